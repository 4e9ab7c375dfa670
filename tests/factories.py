import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from apps.corpus.models import Collection

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))
        self.save()


class CollectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Collection

    name = factory.Sequence(lambda n: f"Collection {n}")

    @factory.post_generation
    def creator_manages(self, create, extracted, **kwargs):
        """As apps.corpus.services.collection_create does: the creator holds a manage grant."""
        if create and self.created_by_id:
            from apps.corpus.models import CollectionGrant

            CollectionGrant.objects.get_or_create(collection=self, user_id=self.created_by_id,
                                                  defaults={"level": CollectionGrant.Level.MANAGE})
