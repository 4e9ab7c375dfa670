from django.urls import path

from apps.corpus import views

app_name = "corpus"
urlpatterns = [
    path("", views.collection_list, name="collection_list"),
    path("new/", views.collection_new, name="collection_new"),
    path("<int:collection_id>/", views.collection_detail, name="collection_detail"),
    path("<int:collection_id>/grants/", views.grant_add, name="grant_add"),
    path("<int:collection_id>/personal-data/", views.pii_policy_change, name="pii_policy_change"),
    path("<int:collection_id>/grants/remove/", views.grant_remove, name="grant_remove"),
    path("passages/<int:chunk_id>/", views.passage_detail, name="passage_detail"),
]
