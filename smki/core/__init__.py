"""The shared core every layer stands on: errors, identifiers, database, settings, policy loading, ASN.1.

It imports nothing else of the sandbox, so the CA, the RA, the Repository and the interfaces can all
depend on it without depending on one another.
"""
