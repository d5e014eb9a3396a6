"""What servicekit keeps in each service's own database: the ids of the service tokens it accepted."""

from django.db import models


class AcceptedServiceToken(models.Model):
    """A service token this service accepted, kept until it expires so that it is never accepted twice."""

    JTI_LENGTH = 64

    jti = models.CharField(max_length=JTI_LENGTH, primary_key=True)
    expires_at = models.DateTimeField(db_index=True)
