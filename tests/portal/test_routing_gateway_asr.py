"""The routing gateway list shows each gateway's ASR as the Best ASR route policy sees it now, from the figures
the worker publishes to Redis, read once per page."""

import re
import uuid

import pytest
import redis
from django.conf import settings as django_settings
from django.urls import reverse

from billing import route_stats
from callcore.contract import Keys, RouteStats
from softswitch_portal.switching.models import RoutingGateway

pytestmark = pytest.mark.django_db


@pytest.fixture
def prefix(settings):
    """A Redis prefix of the test's own, its keys deleted afterwards."""
    settings.REDIS_PREFIX = f"sstest-portal-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.REDIS_URL)  # the test may point the settings elsewhere
    yield settings.REDIS_PREFIX
    for key in client.scan_iter(f"{settings.REDIS_PREFIX}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def gateways(db):
    return [RoutingGateway.objects.create(name=f"carrier-{n}", host=f"198.51.100.{n}") for n in (1, 2, 3)]


def asr_cells(response):
    """{gateway name: its Recent ASR cell's text} from the list page."""
    page = response.content.decode()
    header = re.search(r"<thead>(.*?)</thead>", page, re.S).group(1)
    headings = [re.sub(r"<[^>]+>", "", th).strip() for th in re.findall(r"<th[^>]*>(.*?)</th>", header, re.S)]
    column = headings.index("Recent ASR")
    cells = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page.split("<tbody>", 1)[1], re.S):
        texts = [re.sub(r"<[^>]+>", "", td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        cells[texts[0]] = texts[column]
    return cells


def publish(prefix, gateways):
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    stats = RouteStats(at_ms=0, window_minutes=60, gateways=gateways)
    client.set(Keys(prefix).route_asr, stats.encode())
    client.close()


def test_each_gateway_shows_the_published_asr_and_attempts_or_a_dash(operator_client, prefix, gateways, monkeypatch):
    one, two, _three = gateways
    publish(prefix, {one.pk: (120, 99), two.pk: (3, 0)})
    reads = []
    real = route_stats.published
    monkeypatch.setattr(route_stats, "published", lambda: reads.append(1) or real())

    response = operator_client.get(reverse("switching:routinggateway_list"))
    assert response.status_code == 200
    assert asr_cells(response) == {"carrier-1": "82.5% (of 120)", "carrier-2": "0.0% (of 3)", "carrier-3": "\u2014"}
    assert len(reads) == 1  # once for the page, not once a row


def test_nothing_published_or_redis_away_shows_dashes(operator_client, prefix, gateways, settings):
    url = reverse("switching:routinggateway_list")
    assert set(asr_cells(operator_client.get(url)).values()) == {"\u2014"}
    publish(prefix, {gateways[0].pk: (10, 5)})
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = operator_client.get(url)
    assert response.status_code == 200
    assert set(asr_cells(response).values()) == {"\u2014"}
