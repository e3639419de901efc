"""Rows as Dify itself writes them: a tenant, an app (with its model config and an app API key),
end users, and a Service-API conversation — so that the tests can write next to them and read
them back. Values follow DIFY.md §3d and ``shared/dify-api/seed.sql``."""

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

UUID_NIL = "00000000-0000-0000-0000-000000000000"
MODES_WITH_CONFIG = ("chat", "agent-chat", "agent", "completion")


def new_uuid() -> str:
    return str(uuid.uuid4())


def naive_utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@dataclass(frozen=True)
class DifyApp:
    id: str
    tenant_id: str
    mode: str
    app_model_config_id: str | None
    token: str


async def create_dify_app(
    connection: AsyncConnection, mode: str = "chat", status: str = "normal"
) -> DifyApp:
    """A tenant with one app of ``mode`` and one app API key (``app-`` + 24 characters)."""
    tenant_id, app_id, account_id = new_uuid(), new_uuid(), new_uuid()
    config_id = new_uuid() if mode in MODES_WITH_CONFIG else None
    await connection.execute(
        text("INSERT INTO tenants (id, name) VALUES (:id, 'test workspace')"), {"id": tenant_id}
    )
    await connection.execute(
        text(
            "INSERT INTO apps (id, tenant_id, name, description, mode, status, enable_site,"
            " enable_api, app_model_config_id, created_by)"
            " VALUES (:id, :tenant, 'test app', '', :mode, :status, true, true, :config, :account)"
        ),
        {
            "id": app_id,
            "tenant": tenant_id,
            "mode": mode,
            "status": status,
            "config": config_id,
            "account": account_id,
        },
    )
    if config_id is not None:
        await connection.execute(
            text(
                "INSERT INTO app_model_configs (id, app_id, provider, model_id, model)"
                " VALUES (:id, :app, 'openai', 'gpt-4o-mini', :model)"
            ),
            {"id": config_id, "app": app_id, "model": '{"provider": "openai"}'},
        )
    token = f"app-{secrets.token_hex(12)}"
    await connection.execute(
        text(
            "INSERT INTO api_tokens (id, app_id, tenant_id, type, token)"
            " VALUES (:id, :app, :tenant, 'app', :token)"
        ),
        {"id": new_uuid(), "app": app_id, "tenant": tenant_id, "token": token},
    )
    return DifyApp(app_id, tenant_id, mode, config_id, token)


async def create_end_user(
    connection: AsyncConnection, app: DifyApp, session_id: str, type_: str = "service-api"
) -> str:
    """An end user as ``EndUserService.get_or_create_end_user`` creates it."""
    end_user_id = new_uuid()
    await connection.execute(
        text(
            "INSERT INTO end_users (id, tenant_id, app_id, type, external_user_id,"
            " is_anonymous, session_id) VALUES (:id, :tenant, :app, :type, :user, false, :user)"
        ),
        {
            "id": end_user_id,
            "tenant": app.tenant_id,
            "app": app.id,
            "type": type_,
            "user": session_id,
        },
    )
    return end_user_id


@dataclass(frozen=True)
class DifyConversation:
    id: str
    end_user_id: str
    message_ids: tuple[str, ...]
    created_at: datetime


async def create_dify_conversation(
    connection: AsyncConnection, app: DifyApp, end_user_id: str, turns: int = 2
) -> DifyConversation:
    """A conversation with ``turns`` messages, as Dify's Service API leaves them (a minute
    apart, ending a minute ago)."""
    conversation_id = new_uuid()
    start = naive_utc_now() - timedelta(minutes=turns + 1)
    config = app.app_model_config_id
    await connection.execute(
        text(
            "INSERT INTO conversations (id, app_id, app_model_config_id, model_provider,"
            " model_id, mode, name, inputs, introduction, system_instruction,"
            " system_instruction_tokens, status, from_source, from_end_user_id, invoke_from,"
            " dialogue_count, created_at, updated_at) VALUES (:id, :app, :config, :provider,"
            " :model, :mode, 'Dify conversation', '{}', '', '', 0, 'normal', 'api', :user,"
            " 'service-api', :turns, :start, :last)"
        ),
        {
            "id": conversation_id,
            "app": app.id,
            "config": config,
            "provider": "openai" if config else None,
            "model": "gpt-4o-mini" if config else None,
            "mode": app.mode,
            "user": end_user_id,
            "turns": turns,
            "start": start,
            "last": start + timedelta(minutes=turns - 1),
        },
    )
    message_ids = tuple(new_uuid() for _ in range(turns))
    for turn, message_id in enumerate(message_ids):
        at = start + timedelta(minutes=turn)
        await connection.execute(
            text(
                "INSERT INTO messages (id, app_id, model_provider, model_id, conversation_id,"
                " inputs, query, message, message_tokens, message_unit_price, answer,"
                " answer_tokens, answer_unit_price, provider_response_latency, total_price,"
                " currency, from_source, from_end_user_id, message_metadata, invoke_from,"
                " parent_message_id, status, app_mode, created_at, updated_at) VALUES (:id,"
                " :app, 'openai', 'gpt-4o-mini', :conversation, '{}', :query, '[]', 5, 0,"
                " :answer, 6, 0, 0.5, 0, 'USD', 'api', :user, :metadata, 'service-api',"
                " :parent, 'normal', :mode, :at, :at)"
            ),
            {
                "id": message_id,
                "app": app.id,
                "conversation": conversation_id,
                "query": f"Dify question {turn + 1}",
                "answer": f"Dify answer {turn + 1}",
                "user": end_user_id,
                "metadata": '{"annotation_reply": null, "retriever_resources": [], "usage": {}}',
                "parent": UUID_NIL,
                "mode": app.mode,
                "at": at,
            },
        )
    return DifyConversation(conversation_id, end_user_id, message_ids, start)
