"""Every SMKI_* variable is read into the one Settings object, typed and validated, and the modules that
used to read os.environ take it from the instance instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from smki.core.config import DEFAULT_POLICIES_DIR, PROJECT_ROOT, Settings, current_settings
from smki.core.errors import ConfigurationError
from smki.instance import Instance

# field, its variable, a value as the environment holds it, the value the field then has
READ = [
    ("instance_dir", "SMKI_INSTANCE", "/srv/smki/instance", Path("/srv/smki/instance")),
    ("database_url", "SMKI_DATABASE_URL", "postgresql://smki@db/smki", "postgresql://smki@db/smki"),
    ("policies_dir", "SMKI_POLICIES", "/etc/smki/policies", Path("/etc/smki/policies")),
    ("environment", "SMKI_ENVIRONMENT", "production-like", "production-like"),
    ("keystore_passphrase", "SMKI_KEYSTORE_PASSPHRASE", "correct horse", SecretStr("correct horse")),
    ("queue_url", "SMKI_QUEUE_URL", "redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("devicecsr_on_issued", "SMKI_DEVICECSR_ON_ISSUED", "tests.hooks:record", "tests.hooks:record"),
    ("devicecsr_gate", "SMKI_DEVICECSR_GATE", "smki.devicecsr.gate:ledger_gate", "smki.devicecsr.gate:ledger_gate"),
    ("rapp_forms", "SMKI_RAPP_FORMS", "/etc/smki/forms", Path("/etc/smki/forms")),
    ("dccboxed", "SMKI_DCCBOXED", "1", True),
]
BAD = [
    ("SMKI_DCCBOXED", "maybe", "true or false"),
    ("SMKI_DEVICECSR_GATE", "smki.devicecsr.gate.ledger_gate", "module:callable"),
    ("SMKI_DEVICECSR_ON_ISSUED", "print", "module:callable"),
    ("SMKI_ENVIRONMENT", "../../etc", "match pattern"),
]


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in (Settings.variable(name) for name in Settings.model_fields):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_every_setting_has_a_row_here() -> None:
    assert sorted(field for field, *_ in READ) == sorted(Settings.model_fields)


@pytest.mark.parametrize(("field", "variable", "raw", "value"), READ, ids=[row[1] for row in READ])
def test_every_setting_is_read_from_its_variable(clean: pytest.MonkeyPatch, field: str, variable: str, raw: str,
                                                 value: Any) -> None:
    assert Settings.variable(field) == variable
    clean.setenv(variable, raw)
    assert getattr(Settings(), field) == value


def test_the_defaults(clean: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean.chdir(tmp_path)
    settings = Settings()
    assert settings.instance_dir == tmp_path / "instance"
    assert settings.database_url == f"sqlite:///{tmp_path / 'instance' / 'smki.db'}"
    assert settings.policies_dir == DEFAULT_POLICIES_DIR and settings.rapp_forms == PROJECT_ROOT / "rapp_forms"
    assert (settings.environment, settings.keystore_passphrase, settings.queue_url, settings.devicecsr_gate,
            settings.devicecsr_on_issued, settings.dccboxed) == (None, None, None, None, None, False)


def test_an_empty_variable_means_unset(clean: pytest.MonkeyPatch) -> None:
    clean.setenv("SMKI_ENVIRONMENT", "")
    clean.setenv("SMKI_DCCBOXED", "")
    assert (Settings().environment, Settings().dccboxed) == (None, False)


@pytest.mark.parametrize(("variable", "raw", "expected"), BAD, ids=[row[0] for row in BAD])
def test_a_bad_value_is_refused_naming_the_variable(clean: pytest.MonkeyPatch, variable: str, raw: str,
                                                    expected: str) -> None:
    clean.setenv(variable, raw)
    with pytest.raises(ConfigurationError) as caught:
        Settings()
    assert caught.value.code == "CA:CFG13"
    assert re.search(rf"{variable}: expected [^;]*{re.escape(expected)}", caught.value.message), caught.value.message
    assert repr(raw) in caught.value.message


def test_the_passphrase_is_never_shown(clean: pytest.MonkeyPatch) -> None:
    clean.setenv("SMKI_KEYSTORE_PASSPHRASE", "correct horse")
    clean.setenv("SMKI_DCCBOXED", "maybe")  # an error that lists the settings must not leak it
    with pytest.raises(ConfigurationError) as caught:
        Settings()
    settings_text = repr(Settings(dccboxed=False))
    assert "correct horse" not in caught.value.message and "correct horse" not in settings_text


def test_arguments_override_the_environment_and_the_old_positional_form_still_works(
        clean: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean.setenv("SMKI_ENVIRONMENT", "production-like")
    clean.setenv("SMKI_INSTANCE", str(tmp_path / "from-env"))
    positional = Settings(tmp_path / "a", "sqlite://", DEFAULT_POLICIES_DIR, None)
    assert (positional.instance_dir, positional.database_url, positional.environment) == (tmp_path / "a", "sqlite://",
                                                                                          None)
    moved = Settings.from_env(instance_dir=tmp_path / "b")
    assert moved.instance_dir == tmp_path / "b" and moved.database_url == f"sqlite:///{tmp_path / 'b' / 'smki.db'}"
    assert moved.environment == "production-like"


def test_settings_are_read_once_and_cannot_be_changed(clean: pytest.MonkeyPatch) -> None:
    first = current_settings()
    assert current_settings() is first and Settings.from_env() is first
    with pytest.raises(ValidationError):
        first.dccboxed = True
    clean.setenv("SMKI_DCCBOXED", "on")  # as smki serve --dccboxed does for the workers it starts
    assert current_settings() is not first and current_settings().dccboxed is True


# ---- the modules that read os.environ before take the instance's settings ----

def with_settings(instance: Instance, **changes: Any) -> Instance:
    return Instance(instance.settings.model_copy(update=changes))


def test_the_queue_the_gate_and_the_hook_come_from_the_instance(instance: Instance,
                                                                clean: pytest.MonkeyPatch) -> None:
    from smki.devicecsr.gate import LedgerGate, load_gate
    from smki.devicecsr.jobs import queue_url
    from smki.devicecsr.runtime import load_on_issued

    configured = with_settings(instance, queue_url="redis://127.0.0.1:6379/3",
                               devicecsr_gate="smki.devicecsr.gate:ledger_gate",
                               devicecsr_on_issued="tests.policy.test_settings:record_issued")
    assert queue_url(configured) == "redis://127.0.0.1:6379/3"
    assert isinstance(load_gate(configured), LedgerGate)
    assert load_on_issued(configured) is record_issued
    assert queue_url(instance) != "redis://127.0.0.1:6379/3"


def record_issued(issued: list[Any]) -> None:
    """A stand-in SMKI_DEVICECSR_ON_ISSUED hook."""


def test_the_keystore_passphrase_comes_from_the_settings(instance: Instance, tmp_path: Path) -> None:
    settings = instance.settings.model_copy(update={"instance_dir": tmp_path / "other",
                                                    "keystore_passphrase": SecretStr("correct horse")})
    sealed = Instance(settings)
    sealed.keystore.put_secret("probe", b"secret")

    assert not (settings.keystore_dir / "passphrase").exists()  # no generated passphrase file
    assert Instance(settings).keystore.get_secret("probe") == b"secret"


def test_the_repository_reads_dccboxed_from_the_instance(instance: Instance) -> None:
    from repository.web import common
    from smki.web import create_app

    for value in (False, True):
        app = create_app(with_settings(instance, dccboxed=value))
        with app.app_context():
            assert common.dccboxed_compatible() is value


def test_the_forms_folder_is_the_settings(clean: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from smki.ra.forms import forms_dir

    assert forms_dir() == PROJECT_ROOT / "rapp_forms"
    clean.setenv("SMKI_RAPP_FORMS", str(tmp_path))
    assert forms_dir() == tmp_path
