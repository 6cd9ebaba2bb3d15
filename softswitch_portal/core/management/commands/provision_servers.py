"""Give each process its own Redis user and database role (least privilege), with passwords in the local env file.

    manage.py provision_servers --env-file .env

Run by ``scripts/run.sh`` with the servers' administrative login (REDIS_URL, DB_USER: the defaults of a
developer machine). The env file (mode 600, never committed) keeps the snapshot's signing key and every
password, generated on the first run and reused after; the command adds the URLs and role names that
``scripts/as.sh`` hands to each process. Safe to run again: it converges on the same users and grants.
"""

import os
import secrets
from pathlib import Path

import psycopg
import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from callcore import contract
from softswitch_portal.core import provisioning

SECRETS = (
    contract.SIGNING_KEY_ENV,
    *(f"SS_REDIS_PASSWORD_{role.upper()}" for role in provisioning.REDIS_ROLES),
    "SS_DB_PASSWORD_OWNER",
    "SS_DB_PASSWORD_PORTAL",
)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not name.startswith("#"):
                values[name.strip()] = value.strip().strip("'")
    return values


def write_env_file(path: Path, values: dict[str, str]) -> None:
    # Created 600 before anything is written: the file holds every secret of the switch.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("# The switch's secrets on this machine (manage.py provision_servers); never commit or share.\n")
        out.writelines(f"{name}='{value}'\n" for name, value in values.items())
    os.chmod(path, 0o600)


class Command(BaseCommand):
    help = "Create or update the processes' Redis ACL users and PostgreSQL roles; keep their secrets in an env file."

    def add_arguments(self, parser):
        parser.add_argument("--env-file", default=".env", help="Where the secrets are kept (created mode 600).")

    def handle(self, *args, env_file, **options):
        path = Path(env_file)
        values = read_env_file(path)
        for name in SECRETS:
            if not values.get(name):
                values[name] = secrets.token_hex(32)
        prefix = settings.REDIS_PREFIX
        database = settings.DATABASES["default"]
        roles = provisioning.database_roles(database["NAME"])

        try:
            client = redis.Redis.from_url(settings.REDIS_URL)
            provisioning.provision_redis(
                client,
                prefix,
                {role: values[f"SS_REDIS_PASSWORD_{role.upper()}"] for role in provisioning.REDIS_ROLES},
            )
        except redis.RedisError as exc:
            raise CommandError(f"Redis users not set up at {settings.REDIS_URL}: {exc}") from exc
        for role in provisioning.REDIS_ROLES:
            values[f"SS_REDIS_URL_{role.upper()}"] = provisioning.redis_url_for(
                settings.REDIS_URL,
                provisioning.redis_user_name(prefix, role),
                values[f"SS_REDIS_PASSWORD_{role.upper()}"],
            )

        try:
            with psycopg.connect(
                dbname=database["NAME"],
                user=database["USER"],
                password=database["PASSWORD"] or None,
                host=database["HOST"],
                port=database["PORT"],
                autocommit=True,
            ) as connection:
                provisioning.provision_postgres(
                    connection.cursor(),
                    database["NAME"],
                    roles,
                    {"owner": values["SS_DB_PASSWORD_OWNER"], "portal": values["SS_DB_PASSWORD_PORTAL"]},
                )
        except psycopg.Error as exc:
            raise CommandError(f"PostgreSQL roles not set up on {database['NAME']}: {exc}") from exc
        values["SS_DB_USER_OWNER"] = roles.owner
        values["SS_DB_USER_PORTAL"] = roles.portal

        write_env_file(path, values)
        self.stdout.write(
            f"Redis users {', '.join(provisioning.redis_user_name(prefix, r) for r in provisioning.REDIS_ROLES)}; "
            f"database roles {roles.owner}, {roles.portal}; secrets in {path}"
        )
