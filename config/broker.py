"""A filesystem broker for the embedded demo that never exposes a half-written message.

kombu's filesystem transport creates the message file and then writes into it; a worker polling
the folder can read it empty, fail to decode it and stop. Writing under a temporary name and
renaming it into place makes each message appear whole or not at all.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class AtomicFilesystemChannel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final_path = os.path.join(self.data_folder_out, name)
        temporary_path = final_path + ".part"
        try:
            with open(temporary_path, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(temporary_path, final_path)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final_path!r} to directory") from exc


class AtomicFilesystemTransport(filesystem.Transport):
    Channel = AtomicFilesystemChannel
