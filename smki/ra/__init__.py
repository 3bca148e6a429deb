"""The Registration Authority (SMKI RAPP, SEC Appendix D): Parties and people, credentials, RAPP forms,
eligibility decisions, the CSR path, and the hash-chained audit log.

Other areas use :class:`smki.ra.service.RegistrationAuthority` (authentication, ``decide_device_csr``,
``release``) and :func:`smki.ra.web.caller` in Flask views.
"""
