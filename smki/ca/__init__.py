"""The Certification Authority: turns an approved request into a signed certificate, and signs CRLs.

It knows nothing of HTTP, Parties or the database. Profiles come from ``policies/profiles``; keys come
from a :class:`~smki.ca.keystore.KeyStore`.
"""
