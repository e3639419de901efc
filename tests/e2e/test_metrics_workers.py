"""Real ``chat-ingest serve`` processes: with ``--workers 2`` /metrics reports the sum over
both workers; a key revoked with the CLI stops working within API_KEY_CACHE_TTL; the logs of a
run never contain chat text, file URL query strings or keys."""

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.servers import run_cli, serving

SECRETS = ("SECRET-QUESTION-7", "SECRET-ANSWER-7", "SECRET-SIGNATURE-7")
SECRET_FIELDS = {
    "query": "my card number is SECRET-QUESTION-7",
    "answer": "SECRET-ANSWER-7",
    "files": [{"url": "https://files.example/a.pdf?sig=SECRET-SIGNATURE-7"}],
}


def _samples(base_url: str) -> dict[str, float]:
    with httpx.Client(base_url=base_url, headers={"Connection": "close"}) as http:
        text = http.get("/metrics").text
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _insert(base_url: str, headers: dict[str, str], number: int, **fields: object) -> int:
    body = {"app_id": "app", "user_id": "u", "query": f"q{number}", "answer": "a"} | fields
    with httpx.Client(base_url=base_url, headers={"Connection": "close"} | headers) as http:
        return http.post("/api/chat/insert", json=body).status_code


def test_two_workers_report_summed_metrics(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from an earlier run")
    env = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'workers.db'}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with serving(env, args=("--workers", "2")) as [url]:
        assert all(_insert(url, {}, number) == 200 for number in range(20))
        scrapes = [_samples(url) for _ in range(6)]
    for samples in scrapes:
        assert samples["chat_insert_total[]"] == 20
        assert samples["chat_insert_success_total[]"] == 20
        route = "[('method', 'POST'), ('route', '/api/chat/insert'), ('status', '200')]"
        assert samples["chat_http_requests_total" + route] == 20
    writers = {path.stem.rsplit("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}
    assert len(writers) == 2  # both workers, and the stale file was cleared at start


def test_a_key_revoked_with_the_cli_stops_working_within_the_ttl(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}", "LOG_LEVEL": "ERROR"}
    created = run_cli("keys", "create", "--app-id", "app", env=env)
    key = created.stdout.strip()
    key_id = created.stderr.split("key id: ", 1)[1].split()[0]
    listed = run_cli("keys", "list", env=env).stdout
    assert key_id in listed and key not in listed and "active" in listed
    log_path = tmp_path / "serve.log"
    server_env = env | {"API_KEY_CACHE_TTL": "1", "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"}
    with serving(server_env, log_path=log_path) as [url]:
        auth = {"Authorization": f"Bearer {key}"}
        assert _insert(url, auth, 1, **SECRET_FIELDS) == 200
        assert run_cli("keys", "revoke", key_id, env=env).returncode == 0
        time.sleep(1.2)
        assert _insert(url, auth, 2, **SECRET_FIELDS) == 401
    logged = log_path.read_text()
    assert '"route":"/api/chat/insert","status":200' in logged and '"status":401' in logged
    assert key not in logged
    assert all(secret not in logged for secret in SECRETS)
