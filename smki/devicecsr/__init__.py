"""Device CSR channels of SEC Appendix M: the ad hoc and batched Device CSR web services, and the
portal's batch upload, processed in the background on a job queue, exactly once per CSR."""
