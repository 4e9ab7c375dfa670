from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.api import views as api_views
from apps.api.api import api
from rag_platform import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("collections/", include("apps.corpus.urls")),
    path("collections/", include("apps.ingestion.urls")),
    path("audit/", include("apps.audit.urls")),
    path("api/v1/", api.urls),
    path("account/tokens/", api_views.token_list, name="api_tokens"),
    path("account/tokens/<int:token_id>/revoke/", api_views.token_revoke, name="api_token_revoke"),
    path("", include("apps.answering.urls")),
]

if settings.OIDC_ENABLED:  # single sign-on: only when configured (OIDC_RP_CLIENT_ID, rag_platform/conf/sso.py)
    from mozilla_django_oidc.views import OIDCAuthenticationRequestView

    from apps.accounts.views import SingleSignOnCallbackView

    urlpatterns += [
        path("oidc/authenticate/", OIDCAuthenticationRequestView.as_view(), name="oidc_authentication_init"),
        path("oidc/callback/", SingleSignOnCallbackView.as_view(), name="oidc_authentication_callback"),
    ]

handler500 = "rag_platform.errors.server_error"  # a database that is away: 503 with a clear message
handler400 = "rag_platform.errors.bad_request"  # the same, when it surfaces as a session that could not be saved
