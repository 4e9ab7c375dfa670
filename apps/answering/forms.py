from django import forms

from apps.answering.services import MAX_QUESTION_CHARACTERS


class QuestionForm(forms.Form):
    question = forms.CharField(
        max_length=MAX_QUESTION_CHARACTERS,
        widget=forms.Textarea(attrs={"rows": 3, "autofocus": True, "aria-describedby": "question-error"}),
        label="Your question",
    )
    collections = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple,
        label="Search only these collections (none ticked: all you may read)",
    )

    follow_up_of = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, readable=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.readable = list(readable)
        self.fields["collections"].choices = [(c.id, c.name) for c in readable]
