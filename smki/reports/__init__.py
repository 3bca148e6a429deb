"""Reports: the monthly CSR Forecast Variance Report (SEC L8.9, L8.10), Working Days and its schedule.

A client of the RA (forecasts, notices, Subscriber names), the Device CSR services' volume count and the
Repository (lodging): it reads them through their public functions and never their tables.
"""
