"""Pages for committee reviewers: their assigned cases and review forms.

A reviewer reaches a case only through one of their own assignments; any other assignment or
document id answers 404, so that ids of other cases are never confirmed. A page shows the
candidate's material and the reviewer's own review, never another reviewer's nor any staff
member's name. Each POST parses the form, calls `workflow.save_review`, commits once, and on a
refusal rolls back and shows the form again with what was typed.
"""

import logging
import os
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from markupsafe import Markup

from admin_app import storage
from admin_app.extensions import db
from admin_app.i18n import _, _l, now_utc
from admin_app.security import roles_required
from models import (
    ApplicationItem,
    Document,
    FormEntry,
    ItemKind,
    ReviewAssignment,
    Role,
    Verdict,
    form_schema,
    workflow,
)
from models.application import UPLOAD_KINDS, effective_documents, effective_entries
from models.operations import TransitionRefused
from models.review import ROUND_DECISIONS, Decision

log = logging.getLogger(__name__)
blueprint = Blueprint("reviewer", __name__, url_prefix="/review")

reviewer_required = roles_required(Role.reviewer)

ROUND_NAMES = {1: _l("初審"), 2: _l("複審")}


@dataclass
class ItemMaterial:
    """What the candidate handed in for one of the six items in one round."""

    item: ApplicationItem
    document: Document | None = None
    entry: FormEntry | None = None
    readable: Markup | None = None

    @property
    def revised(self):
        """Whether this is a round-2 revision rather than material carried over from round 1."""
        provided = self.document or self.entry
        return provided is not None and provided.round == 2


@dataclass
class TypedReview:
    """A review as the form shows it: saved on the assignment, or as typed in a refused POST."""

    results: dict
    comments: dict
    overall_comment: str
    recommendation: str | None

    @classmethod
    def of(cls, assignment):
        """The review saved on an assignment (draft or submitted)."""
        saved = assignment.item_results or {}
        return cls(
            results={key: (value or {}).get("result") for key, value in saved.items()},
            comments={key: (value or {}).get("comment") or "" for key, value in saved.items()},
            overall_comment=assignment.overall_comment or "",
            recommendation=assignment.recommendation.value if assignment.recommendation else None,
        )

    @classmethod
    def parse(cls, form, round_):
        """The review posted in the form; a recommendation outside the round's is dropped."""
        results, comments = {}, {}
        for item in ApplicationItem:
            result = form.get(f"result-{item.value}")
            results[item.value] = result if result in workflow.ITEM_RESULTS else None
            comments[item.value] = form.get(f"comment-{item.value}", "")
        allowed = {decision.value for decision in ROUND_DECISIONS[round_]}
        recommendation = form.get("recommendation")
        return cls(
            results=results,
            comments=comments,
            overall_comment=form.get("overall_comment", ""),
            recommendation=recommendation if recommendation in allowed else None,
        )

    def item_results(self):
        """The per-item results in the shape `save_review` takes."""
        return {
            key: {"result": self.results.get(key), "comment": self.comments.get(key, "")}
            for key in self.results
        }

    def decision(self):
        """The recommended verdict, or None when none was chosen."""
        return Decision(self.recommendation) if self.recommendation else None


# --- helpers --------------------------------------------------------------------------------


def _own_assignment(assignment_id):
    """The logged-in reviewer's assignment with this id; 404 for anyone else's."""
    assignment = db.session.get(ReviewAssignment, assignment_id)
    if assignment is None or assignment.reviewer_id != current_user.id:
        abort(404)
    return assignment


def _has_draft(assignment):
    return bool(assignment.item_results or assignment.overall_comment or assignment.recommendation)


def review_status(assignment):
    """待審查, 草稿已儲存 or 已送出: where the reviewer's own review stands."""
    if assignment.submitted_at is not None:
        return _("已送出")
    if _has_draft(assignment):
        return _("草稿已儲存")
    return _("待審查")


def _material(case, round_):
    """The six items as the candidate handed them in for a round, records rendered readably."""
    documents = effective_documents(case, round_)
    entries = effective_entries(case, round_)

    material = []
    for item in ApplicationItem:
        if item.kind is ItemKind.upload:
            material.append(ItemMaterial(item, document=documents.get(UPLOAD_KINDS[item])))
            continue
        entry = entries.get(item)
        readable = None
        if entry is not None:
            readable = form_schema.render_readable(entry.template_version.fields, entry.data)
        material.append(ItemMaterial(item, entry=entry, readable=readable))
    return material


def _rounds_shown(assignment):
    """The rounds whose material the assignment's page shows: its own, and round 1 in round 2."""
    return (assignment.round, 1) if assignment.round == 2 else (1,)


def _round_one_verdict(case):
    """The standing round-1 verdict, whose comment told the candidate what to revise."""
    return db.session.scalar(
        sa.select(Verdict)
        .where(Verdict.case_id == case.id, Verdict.round == 1, Verdict.undone_at.is_(None))
        .order_by(Verdict.decided_at.desc(), Verdict.id.desc())
        .limit(1)
    )


def _render(assignment, typed):
    """The assignment page: the case, its material, and the review form or the review sent."""
    case = assignment.case
    editable = workflow.can_review(assignment, current_user)
    if not editable:
        # a read-only page shows what is stored, never what a refused POST carried
        typed = TypedReview.of(assignment)

    earlier = None
    if assignment.round == 2:
        earlier = {"material": _material(case, 1), "verdict": _round_one_verdict(case)}

    return render_template(
        "reviewer/assignment.html",
        assignment=assignment,
        case=case,
        round_name=ROUND_NAMES[assignment.round],
        status=review_status(assignment),
        editable=editable,
        material=_material(case, assignment.round),
        earlier=earlier,
        items=list(ApplicationItem),
        item_results=workflow.ITEM_RESULTS,
        decisions=ROUND_DECISIONS[assignment.round],
        decision_labels={decision.value: decision.label for decision in Decision},
        typed=typed,
    )


# --- pages ----------------------------------------------------------------------------------


@blueprint.route("/")
@reviewer_required
def index():
    """我的審查案件: the reviewer's assignments, open ones first (soonest due), then submitted."""
    assignments = workflow.assignments_of(current_user)

    now = now_utc()
    open_ = sorted(
        (a for a in assignments if a.submitted_at is None),
        key=lambda a: (a.due_at is None, a.due_at or now, a.id),
    )
    submitted = sorted(
        (a for a in assignments if a.submitted_at is not None),
        key=lambda a: a.submitted_at,
        reverse=True,
    )
    return render_template(
        "reviewer/index.html",
        assignments=open_ + submitted,
        open_count=len(open_),
        round_names=ROUND_NAMES,
        review_status=review_status,
        now=now,
    )


@blueprint.route("/<int:assignment_id>", methods=["GET", "POST"])
@reviewer_required
def assignment(assignment_id):
    """One assigned case: every document and record of the round, then the review form."""
    assignment = _own_assignment(assignment_id)
    if request.method == "POST":
        return _save(assignment)
    return _render(assignment, TypedReview.of(assignment))


def _save(assignment):
    """Save the draft or submit the review; on a refusal show the form again as typed."""
    action = request.form.get("action")
    if action not in ("draft", "submit"):
        abort(400)
    submit = action == "submit"
    typed = TypedReview.parse(request.form, assignment.round)

    if submit and request.form.get("confirm") != "yes":
        flash(_("送出前請勾選「確認送出後不得修改」。"), "error")
        return _render(assignment, typed)

    try:
        workflow.save_review(
            assignment,
            current_user,
            typed.item_results(),
            typed.overall_comment,
            typed.decision(),
            submit,
        )
        db.session.commit()
    except TransitionRefused as refusal:
        db.session.rollback()
        flash(refusal.message, "error")
        return _render(assignment, typed)

    if submit:
        flash(_("審查意見已送出，感謝您的審查。"), "success")
    else:
        log.info("case %s: review draft saved by %s", assignment.case_id, current_user.login)
        flash(_("草稿已儲存，送出前仍可修改。"), "success")
    return redirect(url_for(".assignment", assignment_id=assignment.id), code=303)


@blueprint.route("/<int:assignment_id>/document/<int:document_id>")
@reviewer_required
def document(assignment_id, document_id):
    """Download a PDF shown on the assignment's page; any other document answers 404."""
    assignment = _own_assignment(assignment_id)
    shown = set()
    for round_ in _rounds_shown(assignment):
        shown |= {doc.id for doc in effective_documents(assignment.case, round_).values()}
    if document_id not in shown:
        abort(404)
    document = db.session.get(Document, document_id)

    path = storage.path_of(document.stored_name)
    if not os.path.isfile(path):
        log.error("document %s is missing its file %s", document.id, document.stored_name)
        message = _("此文件的檔案已遺失，請洽認證中心。")
        page = render_template("error.html", status=404, title=_("找不到檔案"), message=message)
        return page, 404
    return send_file(
        path,
        mimetype="application/pdf",
        as_attachment=True,
        download_name=storage.download_name(document.original_name),
    )
