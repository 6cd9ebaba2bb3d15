"""Login lockout limits for django-axes, read from the system parameters at each attempt.

An operator who changes SS_MAX_LOGIN_FAILED or SS_LOGIN_LOCK_TIME sees it on
the next login, without restarting the portal.
"""

import datetime as dt

from .models import SystemParameter


def failure_limit(request, credentials):
    return SystemParameter.current("SS_MAX_LOGIN_FAILED")


def cooloff_time(request):
    return dt.timedelta(minutes=SystemParameter.current("SS_LOGIN_LOCK_TIME"))
