"""Least privilege on the servers: a Redis ACL user per process and PostgreSQL roles, set up idempotently.

Redis: the portal, the call core, the ingest and the worker (with beat) each
log in as their own user, allowed the commands a client needs (nothing of
``@dangerous`` or ``@admin``: no FLUSHALL, CONFIG, KEYS, ACL, MONITOR) and only
the key families it uses under the deployment's prefix (``callcore.contract.keys``).
The call core may read the snapshot, the IP-to-country table, the route
figures and the dynamic blacklist but write none of them: only what it counts
and records. The processes that queue or run Celery tasks also get Celery's
own keys. Each call replaces a user's rules and passwords whole (``reset``),
so running it again converges on the rules here.

PostgreSQL: an owner role that owns the schema and migrates it (the worker
runs as it too, as it creates the CDR table's day partitions), and the
portal's role, which may read and write rows (and make the ingest's temporary
staging table) but not create, alter or drop anything in the schema. The call
core has no database role at all.

``manage.py provision_servers`` (run by ``scripts/run.sh``) applies both with
the passwords of the local env file; the tests apply the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from psycopg import sql

__all__ = [
    "REDIS_ROLES",
    "REDIS_COMMANDS",
    "RedisUser",
    "redis_users",
    "redis_user_name",
    "redis_acl_rules",
    "provision_redis",
    "redis_url_for",
    "DatabaseRoles",
    "database_roles",
    "provision_postgres",
]

REDIS_ROLES = ("portal", "callcore", "ingest", "worker")

# Every command a client uses, none that reconfigures, empties, lists or watches the server; no server-side
# functions either (they would outlive the script that loads them) nor flushing every script's cache.
REDIS_COMMANDS = ("+@all", "-@dangerous", "-@admin", "-function", "-script|flush", "-script|kill")

# Celery's broker and result keys (kombu's queue lists and bindings, the unacked set, the task results, the
# workers' control-box replies, each with its priority lists). Its channels (results, the control box, events)
# are named by kombu's fanout settings, so the processes that use Celery may use any channel: a channel keeps
# nothing, and the call core trusts no message without a signed snapshot behind it.
CELERY_KEYS = ("celery*", "_kombu.*", "unacked*", "*.reply.celery.pidbox*")


def celery_keys() -> tuple[str, ...]:
    """CELERY_KEYS and the queues of the project's own (the test calls' worker serves TEST_CALL_QUEUE, which
    the portal fills): without them that worker is refused its first command and stops the run."""
    return (*CELERY_KEYS, f"{settings.TEST_CALL_QUEUE}*")


CELERY_CHANNELS = ("*",)


@dataclass(frozen=True)
class RedisUser:
    """One process's Redis user: key patterns it may read and write, those it may only read, its channels."""

    role: str
    read_write: tuple[str, ...]
    read_only: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()


def redis_user_name(prefix: str, role: str) -> str:
    """Named after the prefix, so deployments (and test runs) sharing one Redis have users of their own."""
    return f"{prefix}-{role}"


def redis_users(prefix: str) -> dict[str, RedisUser]:
    p = prefix
    everything = (f"{p}:*",)
    celery = celery_keys()
    return {
        # The portal publishes the snapshot and the IP-country table, releases blacklist entries and bans,
        # reads the live calls and the dead letters, asks nodes to end calls, and queues Celery tasks.
        "portal": RedisUser("portal", everything + celery, channels=(f"{p}:*", *CELERY_CHANNELS)),
        # The call core counts its calls and bans, records CDRs and fraud events, and blocks what its set-up
        # fraud rules catch (the dynamic blacklist); what the portal and the worker publish for it is
        # read-only, so it cannot change its own configuration.
        "callcore": RedisUser(
            "callcore",
            (
                f"{p}:live:*",
                f"{p}:stats",
                f"{p}:ban:*",
                f"{p}:bans",
                f"{p}:bans:*",
                f"{p}:fraud:*",
                f"{p}:cdr",
                f"{p}:dynbl:*",
            ),
            read_only=(f"{p}:snapshot:*", f"{p}:ipcountry:*", f"{p}:routestats:*"),
            channels=(f"{p}:*",),
        ),
        # The ingest reads the CDR stream, files dead letters, moves live balances and pending debits, counts
        # the route figures and the post-call fraud windows, blocks numbers, and queues alarms.
        "ingest": RedisUser(
            "ingest",
            (
                f"{p}:cdr",
                f"{p}:cdr:*",
                f"{p}:live:*",
                f"{p}:routestats:*",
                f"{p}:fraud:*",
                f"{p}:dynbl:*",
                *celery,
            ),
            channels=(f"{p}:*", *CELERY_CHANNELS),
        ),
        # The worker and beat run every periodic job (republish, route figures, lost calls, bans' export).
        "worker": RedisUser("worker", everything + celery, channels=(f"{p}:*", *CELERY_CHANNELS)),
    }


def redis_acl_rules(user: RedisUser, password: str) -> list[str]:
    """The ACL SETUSER rules of ``user``: ``reset`` first, so nothing from an earlier run survives."""
    if not password:
        raise ValueError(f"the Redis user {user.role} needs a password")
    return [
        "reset",
        "on",
        f">{password}",
        *REDIS_COMMANDS,
        *(f"~{pattern}" for pattern in user.read_write),
        *(f"%R~{pattern}" for pattern in user.read_only),
        *(f"&{pattern}" for pattern in user.channels),
    ]


def provision_redis(client, prefix: str, passwords: dict[str, str]) -> list[str]:
    """Create or update every process's user; returns their names. ``client`` must be allowed ACL SETUSER."""
    names = []
    for role, user in redis_users(prefix).items():
        name = redis_user_name(prefix, role)
        client.execute_command("ACL", "SETUSER", name, *redis_acl_rules(user, passwords[role]))
        names.append(name)
    return names


def redis_url_for(base_url: str, username: str, password: str) -> str:
    """``base_url`` (redis:// or unix://) logging in as ``username``."""
    parts = urlsplit(base_url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class DatabaseRoles:
    owner: str
    portal: str


def database_roles(database: str) -> DatabaseRoles:
    """Named after the database, so several (a test run's) on one server do not share roles."""
    return DatabaseRoles(owner=f"{database}_owner", portal=f"{database}_portal")


def _ensure_role(cursor, name: str, password: str) -> None:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
    verb = "ALTER" if cursor.fetchone() else "CREATE"
    # NOSUPERUSER etc. restated on ALTER too: a role someone widened by hand is narrowed again.
    cursor.execute(
        sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(name), sql.Literal(password)
        )
    )


def provision_postgres(cursor, database: str, roles: DatabaseRoles, passwords: dict[str, str]) -> None:
    """Set up the roles on ``database``; ``cursor`` is a superuser's, connected to that database, in autocommit.

    Tables made before the owner role existed (by a superuser's migrate) are handed to it, so the owner can
    migrate them from then on and its default privileges cover what it makes next.
    """
    owner, portal = sql.Identifier(roles.owner), sql.Identifier(roles.portal)
    db = sql.Identifier(database)
    _ensure_role(cursor, roles.owner, passwords["owner"])
    _ensure_role(cursor, roles.portal, passwords["portal"])
    cursor.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, owner))
    cursor.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(owner))
    # Nobody but the owner creates in the schema, or connects without being named here.
    cursor.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    cursor.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
    # TEMPORARY: the ingest stages each batch in a temporary table, which lives outside the schema.
    cursor.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, portal))
    cursor.execute(
        """SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
             AND pg_get_userbyid(c.relowner) <> %s
             AND NOT (c.relkind = 'S' AND EXISTS (
                 SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))""",
        [roles.owner],
    )
    kinds = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    for name, kind in cursor.fetchall():
        cursor.execute(
            sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kinds[kind]), sql.Identifier("public", name), owner)
        )
    cursor.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(portal))
    cursor.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(portal))
    cursor.execute(sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(portal))
    cursor.execute(
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
        ).format(owner, portal)
    )
    cursor.execute(
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {}"
        ).format(owner, portal)
    )
