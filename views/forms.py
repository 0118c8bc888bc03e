"""The base of every form: CSRF from Flask-WTF and WTForms' messages in Traditional Chinese."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from admin_app.i18n import _l, wtforms_translations


class BaseForm(FlaskForm):
    """A Flask-WTF form whose built-in messages read in Traditional Chinese."""

    class Meta:
        def get_translations(self, form):
            return wtforms_translations()


class LoginForm(BaseForm):
    """帳號 and 密碼."""

    login = StringField(_l("帳號"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("密碼"), validators=[DataRequired(), Length(max=200)])
