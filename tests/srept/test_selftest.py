"""The model Party (``smki srept selftest``) plays every scenario against a freshly started sandbox, over HTTP,
and ends with every scenario passed, a valid evidence pack and the Party's SREPT pass recorded in the RAPP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from smki.devicecsr.runtime import DeviceCsrRuntime
from smki.instance import Instance
from smki.publication import publish_arl, publish_crl
from smki.ra.models import Organisation
from smki.srept.cli import srept
from smki.srept.models import SreptRun
from tests.conftest import serving
from tests.ra.conftest import Population


@pytest.fixture
def sandbox(instance: Instance, population: Population, tmp_path: Path) -> Iterator[str]:
    """The sandbox served over HTTP, with what ``smki serve`` runs beside it: the batch worker and the CRL/ARL
    publisher (here a thread that drains the queue and publishes every half second)."""
    from smki.web import create_app

    runtime = DeviceCsrRuntime.build(instance, queue=f"sqlite:///{tmp_path / 'queue.db'}")
    app = create_app(instance)
    app.config["DEVICECSR_RUNTIME"] = runtime
    stop = threading.Event()

    def companions() -> None:
        while not stop.wait(0.5):
            runtime.jobs.run_pending()
            publish_crl(instance)
            publish_arl(instance)

    worker = threading.Thread(target=companions, daemon=True)
    worker.start()
    with serving(app) as port:
        yield f"http://127.0.0.1:{port}"
    stop.set()
    worker.join(timeout=30)


def test_the_model_party_passes_every_scenario(sandbox: str, instance: Instance, population: Population) -> None:
    assert population.operator.token
    result = CliRunner().invoke(srept, ["selftest", "--url", sandbox, "--operator-token", population.operator.token,
                                       "--timeout", "60", "--record-pass"])
    assert result.exit_code == 0, result.output
    assert "41 of 41 scenarios passed" in result.output
    with instance.database.session() as session:
        run = session.query(SreptRun).one()
        party = session.get(Organisation, run.organisation_id)
        assert party is not None and party.srept_passed_at is not None
        assert run.status == "passed" and run.pack_sha256


@pytest.fixture
def quick_publication(tmp_path: Path, database_url: str, template_instance_dir: Path) -> Instance:
    """An instance whose Repository publishes a revocation within seconds (the shipped debounce is 30 s)."""
    import shutil

    import yaml

    from smki.core.config import DEFAULT_POLICIES_DIR, Settings
    from smki.schema import migrate

    policies = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICIES_DIR, policies)
    repository = yaml.safe_load((policies / "repository.yaml").read_text())
    repository["publication"].update(debounce_seconds=1, max_delay_seconds=2, check_interval_seconds=1)
    (policies / "repository.yaml").write_text(yaml.safe_dump(repository))
    directory = tmp_path / "instance"
    shutil.copytree(template_instance_dir, directory)
    sandbox = Instance(Settings(directory, database_url, policies, None))
    migrate(sandbox.database)
    return sandbox


def test_the_model_party_passes_against_smki_serve(quick_publication: Instance, tmp_path: Path) -> None:
    """As a user starts it: gunicorn with two web workers (a run opened through one is recorded by the other),
    the batch worker and the CRL publisher as companion processes."""
    from smki.ra.population import PopulationBuilder
    from smki.ra.service import RegistrationAuthority
    from tests.serve.served import serving as serve

    operator = PopulationBuilder(RegistrationAuthority(quick_publication)).member(None, "Olga Operator",
                                                                                 "ra_operator").token
    assert operator
    with serve(quick_publication, tmp_path, "--workers", "2", "--threads", "2") as served:
        result = CliRunner().invoke(srept, ["selftest", "--url", f"http://127.0.0.1:{served.port}",
                                           "--operator-token", operator, "--timeout", "120"])
        assert result.exit_code == 0, result.output + served.output()[-3000:]
    assert "41 of 41 scenarios passed" in result.output
