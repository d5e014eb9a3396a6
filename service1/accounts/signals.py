"""Keeps each user's canonical username (accounts.models.CanonicalUsername) with every save of the user, whoever
saves it (/register, createsuperuser, the shell): a clash raises IntegrityError in the saving transaction."""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import CanonicalUsername, canonical_username


@receiver(post_save, sender=get_user_model(), dispatch_uid="accounts.canonical_username")
def keep_canonical_username(sender, instance, **kwargs) -> None:
    CanonicalUsername.objects.update_or_create(
        user=instance, defaults={"canonical": canonical_username(instance.username)}
    )
