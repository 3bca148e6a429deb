"""``smki init``: the hierarchy, the Recovery and Contingency keys, keys at rest, idempotence, crash safety."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from sqlalchemy import event, select

from smki.bootstrap import CONTINGENCY_KEY, CONTINGENCY_WRAPPING_KEY, RECOVERY_KEY, initialise
from smki.ca.contingency import unwrap_contingency_key
from smki.core.asn1 import WRAPPED_APEX_CONTINGENCY_KEY_OID
from smki.core.errors import ConfigurationError
from smki.instance import Instance
from smki.models import IssuanceRecord

BOOTSTRAP = ("root_oca", "issuing_oca", "root_dca", "issuing_dca", "recovery")


@pytest.fixture
def initialised(fresh_instance: Instance) -> Instance:
    result = initialise(fresh_instance)
    assert result.created
    return fresh_instance


def files_under(*directories: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for d in directories for p in sorted(d.rglob("*"))
            if p.is_file()}


def ledger(instance: Instance) -> list[IssuanceRecord]:
    with instance.database.session() as session:
        return list(session.scalars(select(IssuanceRecord).order_by(IssuanceRecord.id)))


def test_init_twice_changes_nothing(initialised):
    settings = initialised.settings
    before = files_under(settings.ca_dir, settings.keystore_dir, settings.instance_dir / "custody")
    serials = {name: initialised.hierarchy.certificate(name).serial_number for name in BOOTSTRAP}
    rows = len(ledger(initialised))

    again = initialise(Instance(settings))

    assert again.created is False
    assert again.certificates == {name: f"{serial:032X}" for name, serial in serials.items()}
    assert files_under(settings.ca_dir, settings.keystore_dir, settings.instance_dir / "custody") == before
    assert len(ledger(initialised)) == rows == 5


def test_ledger_records_all_five_bootstrap_certificates(initialised):
    rows = ledger(initialised)
    hierarchy = initialised.hierarchy
    by_serial = {row.serial: row for row in rows}
    assert len(rows) == 5
    expected_profile = {"root_oca": "root_oca", "issuing_oca": "issuing_oca", "root_dca": "root_dca",
                        "issuing_dca": "issuing_dca", "recovery": "organisation"}
    names = initialised.policies.environment.ca_names
    expected_issuer = {"root_oca": names["root_oca"], "issuing_oca": names["root_oca"],
                       "root_dca": names["root_dca"], "issuing_dca": names["root_dca"],
                       "recovery": names["issuing_oca"]}
    for name in BOOTSTRAP:
        certificate = hierarchy.certificate(name)
        row = by_serial[f"{certificate.serial_number:032X}"]
        assert row.profile == expected_profile[name]
        assert row.issuer_name == expected_issuer[name]
        assert row.channel == "bootstrap"
        assert row.certificate_der == certificate.public_bytes(serialization.Encoding.DER)


def test_an_existing_hierarchy_on_a_new_database_is_recorded_in_its_ledger(initialised, tmp_path):
    from smki.core.config import Settings

    original = {row.serial: row for row in ledger(initialised)}
    moved = Instance(Settings(initialised.settings.instance_dir, f"sqlite:///{tmp_path / 'other.db'}",
                              initialised.settings.policies_dir, None))

    assert initialise(moved).created is False
    rows = {row.serial: row for row in ledger(moved)}
    assert rows.keys() == original.keys()
    for serial, row in rows.items():
        assert (row.profile, row.issuer_name, row.subject_id, row.certificate_der) == (
            original[serial].profile, original[serial].issuer_name, original[serial].subject_id,
            original[serial].certificate_der)
    initialise(moved)
    assert len(ledger(moved)) == 5  # recorded once, not again on each start


def test_the_hierarchy_chains(initialised):
    hierarchy = initialised.hierarchy
    for child, parent in (("root_oca", "root_oca"), ("issuing_oca", "root_oca"), ("root_dca", "root_dca"),
                          ("issuing_dca", "root_dca"), ("recovery", "issuing_oca")):
        hierarchy.certificate(child).verify_directly_issued_by(hierarchy.certificate(parent))


def test_root_oca_carries_the_wrapped_contingency_key(initialised):
    root = initialised.hierarchy.certificate("root_oca")
    extension = root.extensions.get_extension_for_oid(x509.ObjectIdentifier(WRAPPED_APEX_CONTINGENCY_KEY_OID))
    assert extension.critical is False
    value = extension.value.value  # type: ignore[attr-defined]
    wrapping_key = initialised.custody.get_secret(CONTINGENCY_WRAPPING_KEY)
    assert len(wrapping_key) == 32

    unwrapped = unwrap_contingency_key(value, wrapping_key)

    assert unwrapped == initialised.keystore.signer(CONTINGENCY_KEY).public_key()
    assert unwrapped != root.public_key()
    with pytest.raises(InvalidUnwrap):
        unwrap_contingency_key(value, bytes(32))
    with pytest.raises(InvalidUnwrap):
        unwrap_contingency_key(value, wrapping_key[:-1] + bytes([wrapping_key[-1] ^ 1]))


def test_the_wrapping_key_is_held_apart_from_the_ca_keys(initialised):
    settings = initialised.settings
    assert not list(settings.keystore_dir.glob(f"{CONTINGENCY_WRAPPING_KEY}*"))
    assert list((settings.instance_dir / "custody").glob(f"{CONTINGENCY_WRAPPING_KEY}*"))
    # and it is sealed, not stored in the clear
    wrapping_key = initialised.custody.get_secret(CONTINGENCY_WRAPPING_KEY)
    for path in (settings.instance_dir / "custody").iterdir():
        assert wrapping_key not in path.read_bytes()


def test_private_keys_are_encrypted_pkcs8_readable_only_by_the_owner(initialised):
    keystore = initialised.settings.keystore_dir
    keys = sorted(keystore.glob("*.key.pem"))
    assert {p.name.removesuffix(".key.pem") for p in keys} == {
        "root-oca", "issuing-oca", "root-dca", "issuing-dca", RECOVERY_KEY, CONTINGENCY_KEY}
    for path in keys:
        data = path.read_bytes()
        assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):
            serialization.load_pem_private_key(data, password=None)
        with pytest.raises(ValueError):
            serialization.load_pem_private_key(data, password=b"not the passphrase")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    secrets = [*keystore.glob("passphrase"), *(initialised.settings.instance_dir / "custody").iterdir()]
    assert secrets
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_recovery_certificate_is_the_dcc_recovery_role_for_digital_signature(initialised):
    recovery = initialised.hierarchy.certificate("recovery")
    eui = initialised.policies.environment.dcc_entity_identifiers["recovery"]
    ou = recovery.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert [(a.value, a._type) for a in ou] == [("01", _ASN1Type.UTF8String)]
    uid = recovery.subject.get_attributes_for_oid(NameOID.X500_UNIQUE_IDENTIFIER)
    assert [a.value for a in uid] == [b"\x00" + eui.value]
    assert eui.hex == "90B3D51F30000001"  # the DCC's recovery EUI in the test environment
    usage = recovery.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and not usage.value.key_agreement
    assert not any([usage.value.content_commitment, usage.value.key_cert_sign, usage.value.crl_sign])
    assert recovery.public_key() == initialised.keystore.signer(RECOVERY_KEY).public_key()
    assert recovery.issuer == initialised.hierarchy.certificate("issuing_oca").subject


class SimulatedCrash(Exception):
    pass


def test_a_crash_before_the_ledger_commits_leaves_no_hierarchy_and_a_rerun_succeeds(fresh_instance):
    engine = fresh_instance.database.engine

    def crash(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO ISSUANCE"):
            raise SimulatedCrash("the ledger commit failed")

    event.listen(engine, "before_cursor_execute", crash)
    try:
        with pytest.raises(SimulatedCrash):
            initialise(fresh_instance)
    finally:
        event.remove(engine, "before_cursor_execute", crash)

    settings = fresh_instance.settings
    assert not settings.ca_dir.exists()
    assert ledger(fresh_instance) == []

    rerun = Instance(settings)
    result = initialise(rerun)

    assert result.created is True
    assert rerun.hierarchy.exists()
    assert not (settings.instance_dir / "ca.staging").exists()
    assert sorted(row.serial for row in ledger(rerun)) == sorted(result.certificates.values())
    rerun.hierarchy.certificate("issuing_oca").verify_directly_issued_by(rerun.hierarchy.certificate("root_oca"))
    # and the Root OCA's wrapped key opens with the wrapping key now in custody, not a stale one
    root = rerun.hierarchy.certificate("root_oca")
    value = root.extensions.get_extension_for_oid(x509.ObjectIdentifier(WRAPPED_APEX_CONTINGENCY_KEY_OID)).value
    assert unwrap_contingency_key(value.value, rerun.custody.get_secret(CONTINGENCY_WRAPPING_KEY)) == \
        rerun.keystore.signer(CONTINGENCY_KEY).public_key()  # type: ignore[attr-defined]


def test_init_refuses_to_replace_a_damaged_hierarchy(initialised):
    settings = initialised.settings
    root_key = (settings.keystore_dir / "root-oca.key.pem").read_bytes()
    issuing = settings.ca_dir / "issuing_oca.pem"
    issuing.unlink()

    with pytest.raises(ConfigurationError) as caught:
        initialise(Instance(settings))

    assert caught.value.code == "CA:CFG10"
    assert "issuing_oca" in caught.value.message
    # nothing replaced: the root key and the other certificates are as they were
    assert (settings.keystore_dir / "root-oca.key.pem").read_bytes() == root_key
    assert (settings.ca_dir / "root_oca.pem").exists()
    assert len(ledger(initialised)) == 5


def test_init_builds_into_an_empty_ca_folder(fresh_instance):
    fresh_instance.settings.ca_dir.mkdir(parents=True)
    assert initialise(fresh_instance).created
