"""The Python client and the examples against real ``chat-ingest serve`` processes."""

import subprocess
import sys
import threading
from pathlib import Path

from chat_ingest.client import ChatIngestClient
from tests.conftest import unique
from tests.e2e.servers import Server, serving

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_client_survives_a_restart_without_losing_or_duplicating(tmp_path: Path) -> None:
    server = Server({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}"})
    server.launch()
    server.wait_until_healthy()
    restart_requested, restarted = threading.Event(), threading.Event()

    def restart() -> None:
        restart_requested.wait(timeout=60)
        server.stop()
        server.launch()  # same port, same database file
        server.wait_until_healthy()
        restarted.set()

    restarter = threading.Thread(target=restart)
    restarter.start()
    app_id, conversation_id = unique("app"), unique("conv")
    inserted_during_restart = 0
    try:
        with ChatIngestClient(server.url, max_retries=5) as client:
            for i in range(60):
                client.insert(
                    app_id=app_id,
                    user_id="u",
                    conversation_id=conversation_id,
                    query=f"q{i}",
                    answer="a",
                )
                if i == 20:
                    restart_requested.set()
                elif restart_requested.is_set() and not restarted.is_set():
                    inserted_during_restart += 1
            restarter.join(timeout=60)
            assert restarted.is_set() and inserted_during_restart < 39  # it happened mid-loop
            queries = [m.query for m in client.iter_messages(conversation_id, page_size=20)]
            assert queries == [f"q{i}" for i in range(60)]
            assert client.get_conversation(conversation_id).dialogue_count == 60
    finally:
        restart_requested.set()
        restarter.join(timeout=60)
        server.close()


def _run_example(name: str, url: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env={"CHAT_INGEST_URL": url, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_examples_run_against_the_default_service(tmp_path: Path) -> None:
    with serving({}, cwd=tmp_path) as [url]:
        basic = _run_example("basic.py", url)
        assert '"created": true' in basic and "消息数 1" in basic
        files = _run_example("with_files.py", url)
        assert "文件: document /uploads/document.pdf (upload_file_id=file-123456)" in files
        multi_turn = _run_example("multi_turn.py", url)
        assert multi_turn.count('"created": true') == 3
        assert multi_turn.count('"conversation_created": true') == 1
        assert multi_turn.index("什么是机器学习？") < multi_turn.rindex("如何开始学习机器学习？")
        assert "问: 机器学习有哪些应用场景？" in multi_turn
