from django.urls import path

from apps.ingestion import views

app_name = "ingestion"
urlpatterns = [
    path("<int:collection_id>/upload/", views.document_upload_view, name="document_upload"),
]
