"""Key Custodians and key ceremonies (SEC L10, Appendix L): the Recovery and Contingency keys held so that
only a quorum of custodians, at a ceremony the SMKI PMA has sanctioned, can use them.

A client of the RA (custodians are RA appointments, every step is in the RA's audit chain) and of the CA
(which seals and opens key material under a key-encryption key, :mod:`smki.ca.keystore`).
"""
