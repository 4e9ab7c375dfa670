from django.urls import path

from apps.answering import erasure_views, views

app_name = "answering"
urlpatterns = [
    path("", views.ask, name="ask"),
    path("ask/stream/", views.ask_stream, name="ask_stream"),
    path("history/", views.history, name="history"),
    # Under /audit/ with the review pages it starts from (apps.audit.urls has no such path).
    path("audit/erase/<str:kind>/", erasure_views.erase, name="erase"),
]
