from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from customers.exceptions import ImportFileError
from customers.services.importing import (
    ImportReport,
    customer_import_check,
    customer_import_create,
    customer_import_queue,
    customer_import_run,
    import_text_decode,
)


class Command(BaseCommand):
    help = "Import customers from a CSV file (see the admin's import page for the columns); runs synchronously."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--basis", default="", help="How the people in the file gave the consent it grants.")
        parser.add_argument(
            "--phone-region", default="", help="Country code local phone numbers in the file belong to, e.g. GB."
        )
        parser.add_argument("--dry-run", action="store_true", help="Check the file and report; write nothing.")
        parser.add_argument("--user", help="Username recorded as the importer.")

    def handle(self, *args, **options):
        path = Path(options["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user {options['user']!r}.")
        try:
            if options["dry_run"]:
                report = customer_import_check(
                    content=import_text_decode(data),
                    consent_basis=options["basis"],
                    phone_region=options["phone_region"],
                )
                self._report(
                    "Dry run", report.total_rows, report.created, report.updated, report.error_count, report.errors
                )
                self._changes(report.changes, report.created + report.updated)
                self.stdout.write("Nothing was changed (dry run).")
                return
            customer_import = customer_import_create(
                file_name=path.name,
                data=data,
                consent_basis=options["basis"],
                phone_region=options["phone_region"],
                user=user,
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        self._report(
            f"Check of import {customer_import.pk}",
            customer_import.total_rows,
            customer_import.created_count,
            customer_import.updated_count,
            customer_import.error_count,
            [],
        )
        customer_import_queue(customer_import=customer_import, enqueue=False)
        customer_import = customer_import_run(import_id=customer_import.pk, progress=self._progress, time_budget=None)
        self._report(
            f"Import {customer_import.pk} {customer_import.get_status_display().lower()}",
            customer_import.total_rows,
            customer_import.created_count,
            customer_import.updated_count,
            customer_import.error_count,
            customer_import.errors,
        )

    def _changes(self, changes: list[dict], good_rows: int) -> None:
        for change in changes:
            head = "new profile" if change["action"] == "create" else "update"
            self.stdout.write(f"  line {change['line']}: {head} {change['who']}")
            for name, old, new in change["fields"]:
                self.stdout.write(f"    {name}: {old!r} -> {new!r}" if old else f"    {name}: {new!r}")
            if change["action"] == "update" and not change["fields"]:
                self.stdout.write("    no field changes")
            for consent in change["consents"]:
                self.stdout.write(f"    {consent['column']}={consent['value']}: {consent['text']}")
            if change["note"]:
                self.stdout.write(f"    {change['note']}")
        if good_rows > len(changes):
            self.stdout.write(f"  … and {good_rows - len(changes)} more row(s) not listed.")

    def _progress(self, report: ImportReport) -> None:
        self.stdout.write(f"… {report.processed_rows}/{report.total_rows} rows")

    def _report(self, title, total, created, updated, error_count, errors) -> None:
        self.stdout.write(f"{title}: {total} row(s), {created} created, {updated} updated, {error_count} error(s).")
        for error in errors:
            self.stdout.write(f"  line {error['line']}: {error['error']}")
        if error_count > len(errors) and errors:
            self.stdout.write(f"  … and {error_count - len(errors)} more.")
