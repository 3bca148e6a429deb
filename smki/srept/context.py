"""The recorder of an instance: its database, its catalogue, and the IKI CA that client certificates chain to."""

from __future__ import annotations

from functools import cache

from cryptography import x509

from smki.instance import Instance
from smki.srept.recording import Recorder, recorder_for


def recorder(instance: Instance) -> Recorder:
    return recorder_for(instance.database, instance.policies.srept, lambda: _iki_ca(instance),
                        bool(instance.settings.dccboxed))


@cache
def _iki_ca(instance: Instance) -> x509.Certificate:
    from smki.ra.iki import IkiAuthority
    from smki.ra.settings import load_ra_settings

    return IkiAuthority(instance, load_ra_settings(instance.settings.policies_dir)).certificate
