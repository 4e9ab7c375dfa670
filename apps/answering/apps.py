from django.apps import AppConfig


class AnsweringConfig(AppConfig):
    name = "apps.answering"
    label = "answering"
    verbose_name = "Answering"
