"""Create the role groups and give them their permissions."""

from django.db import migrations

ROLE_PERMISSIONS = {
    "staff": [],
    "corpus_admin": [
        "corpus.add_collection",
        "corpus.change_collection",
        "corpus.view_collection",
        "corpus.add_document",
        "corpus.view_document",
    ],
    "compliance_officer": ["audit.view_auditevent"],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); create them now
    # so the groups can be given theirs in this migration.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for dotted in perms:
            app_label, codename = dotted.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("audit", "0002_append_only"),
        ("corpus", "0001_initial"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
