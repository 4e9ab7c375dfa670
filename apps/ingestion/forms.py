from django import forms


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class UploadForm(forms.Form):
    files = forms.FileField(
        widget=MultipleFileInput(attrs={"multiple": True}),
        label="Files (txt, md, html, pdf, docx)",
    )
