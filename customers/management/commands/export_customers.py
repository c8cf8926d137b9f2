from django.core.management.base import BaseCommand, CommandError

from customers.models import Customer, Store
from customers.services.exporting import customers_export_csv


class Command(BaseCommand):
    help = "Write active customers as CSV (the import's columns; formula-safe) to a file or stdout."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")
        parser.add_argument("--store", help="Only customers whose home store has this code.")

    def handle(self, *args, **options):
        queryset = Customer.objects.all()
        if options["store"]:
            store = Store.objects.filter(code__iexact=options["store"]).first()
            if store is None:
                raise CommandError(f"No store has the code {options['store']!r}.")
            queryset = queryset.filter(home_store=store)
        if options["output"]:
            with open(options["output"], "w", newline="", encoding="utf-8") as stream:
                count = customers_export_csv(queryset=queryset, stream=stream)
            self.stderr.write(f"Wrote {count} customer(s) to {options['output']}.")
        else:
            count = customers_export_csv(queryset=queryset, stream=self.stdout)
            self.stderr.write(f"Wrote {count} customer(s).")
