from django.urls import path

from apps.answering import views

app_name = "answering"
urlpatterns = [path("", views.ask, name="ask")]
