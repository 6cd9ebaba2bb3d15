from django.db import models


class AuthMode(models.TextChoices):
    IP = "ip", "Source IP"
    IP_PORT = "ip_port", "Source IP and port"


class RoutePolicy(models.TextChoices):
    PRIORITY = "priority", "Priority"
    LEAST_COST = "least_cost", "Least cost"
    ASR = "asr", "Best ASR"


class Transport(models.TextChoices):
    UDP = "udp", "UDP"
    TCP = "tcp", "TCP"


class MediaProxy(models.TextChoices):
    """Whether a gateway's calls relay their media (RTP) through the switch (callcore.media)."""

    OFF = "off", "Off: media flows directly between the peers"
    ALWAYS = "always", "Always through the switch"
    NAT = "nat", "When the caller is behind NAT"


class PoolMode(models.TextChoices):
    RANDOM = "random", "Random"
    ROUND_ROBIN = "round_robin", "Round robin"


class TransformTarget(models.TextChoices):
    CALLER = "caller", "Caller number"
    CALLEE = "callee", "Callee number"


WEEKDAYS = [(0, "Mon"), (1, "Tue"), (2, "Wed"), (3, "Thu"), (4, "Fri"), (5, "Sat"), (6, "Sun")]


class TestCallStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"  # the agent could not run (the call's own failure is a finished call's SIP status)
