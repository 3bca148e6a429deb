"""srept"""
