"""What an API request may do."""

from rest_framework.permissions import IsAdminUser


class ScopedModelPermissions(IsAdminUser):
    pass
