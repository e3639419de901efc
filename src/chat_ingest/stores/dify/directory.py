"""Dify apps and end users by id, cached: the look-ups every write needs cost no round trip once
warm.

An app is read again after ``ttl`` seconds (its mode or status may change). An end user is
cached only once it has been read back committed, so a cached id never belongs to a
transaction that was rolled back.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chat_ingest.errors import InvalidInput
from chat_ingest.stores import sql
from chat_ingest.stores.dify.cache import TtlCache
from chat_ingest.stores.dify.ids import derived_end_user_id
from chat_ingest.stores.dify.tables import DifyTables, present

CONVERSATION_MODES = frozenset({"chat", "agent-chat", "advanced-chat", "agent"})
MODES_WITH_MODEL_CONFIG = frozenset({"chat", "agent-chat", "agent"})
END_USER_TYPE = "service-api"


@dataclass(frozen=True)
class DifyApp:
    id: str
    tenant_id: str
    mode: str
    app_model_config_id: str | None


def _not_usable(reason: str) -> InvalidInput:
    return InvalidInput(
        f"Invalid request body: app_id {reason}.",
        detail=[{"loc": ["body", "app_id"], "msg": reason, "type": "value_error"}],
    )


def usable_app(row: object | None) -> DifyApp | InvalidInput:
    """The app behind ``row``, or why records cannot be written to it (SPEC §8)."""
    if row is None:
        return _not_usable("is not the id of a Dify app")
    status, mode = getattr(row, "status"), getattr(row, "mode")  # noqa: B009
    if status != "normal":
        return _not_usable(f"names a Dify app whose status is {status!r}, not 'normal'")
    if mode not in CONVERSATION_MODES:
        return _not_usable(
            f"names a Dify app of mode {mode!r}, which has no conversations "
            f"(one of {', '.join(sorted(CONVERSATION_MODES))} is needed)"
        )
    config = getattr(row, "app_model_config_id") if mode in MODES_WITH_MODEL_CONFIG else None  # noqa: B009
    return DifyApp(str(getattr(row, "id")), str(getattr(row, "tenant_id")), mode, config)  # noqa: B009


class Directory:
    def __init__(self, tables: DifyTables, ttl: float) -> None:
        self.tables = tables
        self._apps: TtlCache[str, DifyApp] = TtlCache(ttl)
        self._end_users: TtlCache[tuple[str, str], str] = TtlCache(ttl, max_entries=100_000)

    async def apps(
        self, connection: AsyncConnection, app_ids: Iterable[str]
    ) -> dict[str, DifyApp | InvalidInput]:
        """Each of ``app_ids`` (canonical UUIDs) as a usable app or the 400 it is."""
        found: dict[str, DifyApp | InvalidInput] = {}
        missing = []
        for app_id in set(app_ids):
            cached = self._apps.get(app_id)
            if cached is None:
                missing.append(app_id)
            else:
                found[app_id] = cached
        if missing:
            a = self.tables.apps.c
            statement = select(a.id, a.tenant_id, a.mode, a.status, a.app_model_config_id)
            rows = {
                str(row.id): row
                for row in await connection.execute(statement.where(a.id.in_(missing)))
            }
            for app_id in missing:
                app = usable_app(rows.get(app_id))
                if isinstance(app, DifyApp):
                    self._apps.put(app_id, app)
                found[app_id] = app
        return found

    async def end_users(
        self, connection: AsyncConnection, wanted: Iterable[tuple[DifyApp, str]]
    ) -> dict[tuple[str, str], str]:
        """The end user id of each ``(app, user_id)``, creating the missing ones
        (``type='service-api'``, ``session_id = external_user_id = user_id``)."""
        result: dict[tuple[str, str], str] = {}
        unknown: dict[tuple[str, str], DifyApp] = {}
        for app, user_id in wanted:
            cached = self._end_users.get((app.id, user_id))
            if cached is None:
                unknown[(app.id, user_id)] = app
            else:
                result[(app.id, user_id)] = cached
        if not unknown:
            return result
        found = await self._find(connection, unknown)
        for key, end_user_id in found.items():
            self._end_users.put(key, end_user_id)
        result |= found
        absent = {key: app for key, app in unknown.items() if key not in found}
        if absent:
            result |= await self._create(connection, absent)
        return result

    async def _find(
        self, connection: AsyncConnection, wanted: dict[tuple[str, str], DifyApp]
    ) -> dict[tuple[str, str], str]:
        """Dify's own choice (``EndUserService.get_or_create_end_user``): the app's end user
        with that ``session_id``, ``service-api`` type first (then the oldest)."""
        e = self.tables.end_users.c
        by_app: dict[DifyApp, list[str]] = {}
        for (_, user_id), app in wanted.items():
            by_app.setdefault(app, []).append(user_id)
        found: dict[tuple[str, str], str] = {}
        for app, user_ids in by_app.items():
            for chunk in sql.chunks(sorted(user_ids)):
                statement = (
                    select(e.session_id, e.id)
                    .where(e.tenant_id == app.tenant_id, e.app_id == app.id)
                    .where(e.session_id.in_(chunk))
                    .order_by(
                        case((e.type == END_USER_TYPE, 0), else_=1).desc(),
                        e.created_at.desc(),
                        e.id.desc(),
                    )
                )
                for session_id, end_user_id in await connection.execute(statement):
                    found[(app.id, session_id)] = str(end_user_id)  # the last one wins
        return {key: found[key] for key in wanted if key in found}

    async def _create(
        self, connection: AsyncConnection, absent: dict[tuple[str, str], DifyApp]
    ) -> dict[tuple[str, str], str]:
        """Insert the end users with their derived ids, in id order (no deadlock between two
        batches); a racing creator's row is the same row."""
        rows = sorted(
            (
                {
                    "id": derived_end_user_id(app.id, user_id),
                    "tenant_id": app.tenant_id,
                    "app_id": app.id,
                    "type": END_USER_TYPE,
                    "external_user_id": user_id,
                    "is_anonymous": False,
                    "session_id": user_id,
                }
                for (_, user_id), app in absent.items()
            ),
            key=lambda row: str(row["id"]),
        )
        table = self.tables.end_users
        await sql.insert_ignoring_duplicates(
            connection, table, [present(table, row) for row in rows]
        )
        return {key: derived_end_user_id(key[0], key[1]) for key in absent}
