from django.urls import path

from apps.answering import views

app_name = "answering"
urlpatterns = [
    path("", views.ask, name="ask"),
    path("ask/stream/", views.ask_stream, name="ask_stream"),
    path("history/", views.history, name="history"),
]
