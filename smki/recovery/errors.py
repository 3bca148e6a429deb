"""The refusals of custody and ceremonies, ``RC:`` codes (recovery). Each says what to do next."""

from __future__ import annotations

from smki.core.errors import SmkiError

CUSTODIANS = "RC:CUS01"        # the custodians named cannot hold a custody (count, Parties, role, passphrase)
CUSTODY_EXISTS = "RC:CUS02"    # the key is already in custody
NO_CUSTODY = "RC:CUS03"        # the key is not in custody
KEY_KIND = "RC:CUS04"          # not a key custody knows (recovery, contingency)
NOT_PMA = "RC:CER00"           # only the SMKI PMA decides that a key may be used
NO_DECISION = "RC:CER01"       # no unused PMA decision for this key
TOO_FEW = "RC:CER02"           # fewer shares than the quorum
NOT_CUSTODIAN = "RC:CER03"     # not (or no longer) a custodian of this custody
PRESENTED_TWICE = "RC:CER04"   # that custodian's share was already presented at this ceremony
UNOPENABLE = "RC:CER05"        # the share does not open with the passphrase (wrong passphrase, or not theirs)
FORGED = "RC:CER06"            # the share opens but is not the share this custodian was given
NOT_OPEN = "RC:CER07"          # the ceremony is closed
UNKNOWN_CEREMONY = "RC:CER08"
WRONG_KIND = "RC:CER09"        # the ceremony was not opened for that (use, reshare, new_key)


class CustodyRefused(SmkiError):
    """A custody or ceremony step was refused; nothing of it took effect."""

    status = 409
