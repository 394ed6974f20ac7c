"""What the API shows of migrations: one, or all (of a plan), newest first."""

from ferry_planner.domain.migration_views import MigrationView, migration_view
from ferry_planner.domain.migrations import Migration
from ferry_planner.handlers.context import PlannerPorts
from ferry_planner.handlers.errors import NotFoundError


def require_migration(ports: PlannerPorts, name: str) -> Migration:
    found = ports.migrations.get(name)
    if found is None:
        raise NotFoundError("migration", name)
    return found


def migration(ports: PlannerPorts, name: str) -> MigrationView:
    return migration_view(require_migration(ports, name))


def migrations(ports: PlannerPorts, plan: str | None = None) -> list[MigrationView]:
    found = [m for m in ports.migrations.all() if plan is None or m.plan == plan]
    found.sort(key=lambda m: (m.created_at, m.name), reverse=True)
    return [migration_view(m) for m in found]
