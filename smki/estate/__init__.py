"""The simulated device estate (issue 13): GBCS devices with their keys, Device Certificates, trust-anchor cells,
anti-replay counters and injected faults, built through the sandbox's own issuance path and Repository.

A client of the RA, the CA's issuance path and the Repository: it calls their public functions and keeps its
own tables (``estate_*``)."""
