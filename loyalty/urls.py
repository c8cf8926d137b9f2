from django.urls import path

from loyalty import views

app_name = "loyalty"

urlpatterns = [
    path("", views.lookup, name="lookup"),
    path("enrol/", views.enrol, name="enrol"),
    path("card/<str:card_number>/", views.account, name="account"),
    path("card/<str:card_number>/purchase/", views.purchase, name="purchase"),
    path("card/<str:card_number>/coupon/", views.coupon_check, name="coupon-check"),
    path("card/<str:card_number>/coupon/confirm/", views.coupon_confirm, name="coupon-confirm"),
    path("card/<str:card_number>/points/", views.points_spend, name="points"),
    path("refund/", views.refund, name="refund"),
    path("refund/confirm/", views.refund_confirm, name="refund-confirm"),
]
