from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("answering", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="askedquestion",
            name="answer_kind",
            field=models.CharField(
                choices=[("verified", "Verified answer"), ("quotation", "Quotation"),
                         ("not_stated", "Not stated in your documents"), ("none", "No answer")],
                default="none", max_length=16,
            ),
        ),
    ]
