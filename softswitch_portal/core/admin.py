from django import forms
from django.contrib import admin

from callcore.contract import PARAMETERS

from .models import SystemParameter


class SystemParameterAdminForm(forms.ModelForm):
    name = forms.ChoiceField(choices=[(p.name, p.name) for p in PARAMETERS])

    class Meta:
        model = SystemParameter
        fields = ("name", "value")


@admin.register(SystemParameter)
class SystemParameterAdmin(admin.ModelAdmin):
    form = SystemParameterAdminForm
    list_display = ("name", "value", "updated")
    search_fields = ("name",)
