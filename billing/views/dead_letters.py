"""The CDR dead letters page: the records the ingest set aside, with why; requeue (after a fix) or discard each.

Viewing CDRs is needed to see them, changing CDRs to requeue or discard.
"""

import datetime as dt

import redis
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views import View

from .. import ingest


class DeadLetterView(LoginRequiredMixin, View):
    """The CDR records the ingest set aside, with why; requeue (after a fix) or discard each."""

    template_name = "billing/dead_letters.html"
    limit = 200

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            needed = "billing.change_cdr" if request.method == "POST" else "billing.view_cdr"
            if not request.user.has_perm(needed):
                raise PermissionDenied("You may not manage CDR dead letters.")
        return super().dispatch(request, *args, **kwargs)

    def get(self, request):
        error, letters, count = None, [], 0
        try:
            letters = ingest.dead_letters(self.limit)
            count = ingest.dead_letter_count()
        except redis.RedisError as exc:
            error = f"Redis is unavailable: {exc}"
        rows = [
            (letter, dt.datetime.fromtimestamp(letter.at_ms / 1000, tz=dt.UTC) if letter.at_ms else None)
            for letter in letters
        ]
        context = {
            "letters": rows,
            "count": count,
            "error": error,
            "limit": self.limit,
            "can_change": request.user.has_perm("billing.change_cdr"),
        }
        return render(request, self.template_name, context)

    def post(self, request):
        letter_id, action = request.POST.get("letter", ""), request.POST.get("action")
        try:
            if action == "requeue":
                ingest.requeue_dead_letter(letter_id)
                messages.success(request, f"Dead letter {letter_id} put back on the CDR stream.")
            elif action == "discard":
                if ingest.discard_dead_letter(letter_id):
                    messages.success(request, f"Dead letter {letter_id} discarded.")
                else:
                    messages.warning(request, f"Dead letter {letter_id} was already gone.")
            else:
                messages.error(request, "Unknown action.")
        except KeyError:
            messages.warning(request, f"Dead letter {letter_id} was already gone.")
        except (redis.RedisError, ValueError) as exc:
            messages.error(request, f"Could not {action} {letter_id}: {exc}")
        return redirect("billing:dead_letters")
