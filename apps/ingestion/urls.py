from django.urls import path

from apps.ingestion import views

app_name = "ingestion"
urlpatterns = [
    path("<int:collection_id>/upload/", views.document_upload_view, name="document_upload"),
    path("<int:collection_id>/documents/<int:document_id>/delete/", views.document_delete_view, name="document_delete"),
    path("<int:collection_id>/documents/<int:document_id>/retry/", views.document_retry_view, name="document_retry"),
]
