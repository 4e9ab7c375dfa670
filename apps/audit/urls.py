from django.urls import path

from apps.audit import views

app_name = "audit"
urlpatterns = [
    path("", views.event_list, name="event_list"),
    path("export/", views.event_export, name="event_export"),
    path("attestation/", views.attestation, name="attestation"),
    path("<int:sequence>/", views.event_detail, name="event_detail"),
    path("<int:sequence>/reveal/", views.event_reveal, name="event_reveal"),
    path("<int:sequence>/export/", views.event_detail_export, name="event_detail_export"),
]
