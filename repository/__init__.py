"""The SMKI Repository: stores, indexes and publishes certificates, CRLs, ARLs and lodged documents.

It knows nothing of the RA: the RA lodges into it (:class:`repository.store.CertificateRepository`) and
provisions credentials into it (:mod:`repository.access`). Anyone entitled may query it.
"""
