"""The base of every form: CSRF from Flask-WTF and WTForms' messages in Traditional Chinese."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

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


class PasswordChangeForm(BaseForm):
    """目前的密碼, and the new one twice; the password rules are checked by the view."""

    current_password = PasswordField(_l("目前的密碼"), validators=[DataRequired(), Length(max=200)])
    new_password = PasswordField(_l("新密碼"), validators=[DataRequired(), Length(max=200)])
    confirm_password = PasswordField(
        _l("再輸入一次新密碼"),
        validators=[
            DataRequired(),
            EqualTo("new_password", message=_l("兩次輸入的新密碼不一致。")),
        ],
    )
