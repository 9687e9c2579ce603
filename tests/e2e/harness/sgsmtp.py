#!/usr/bin/env python3
"""sgsmtp.py - small SMTP peers for the Sealgate end-to-end tests and benchmarks.

Subcommands:
  recv      scriptable SMTP receiver: every accepted message is written atomically
            to DIR/<n>.eml (the DATA content, dot-unstuffed, line endings kept) and
            its envelope and arrival time to DIR/<n>.json. The reply policy is
            read from MODE_FILE at each transaction (the test rewrites it while the
            receiver runs): accept | tempfail (451 at end of DATA) | reject-rcpt
            (550 5.1.1 at RCPT) | reject-data (554 5.7.1 at end of DATA).
            --discard keeps only the .json (size, Message-ID, arrival time).
  send      concurrent sender: N messages over C connections, each with a unique
            Message-ID; retries connection failures (the server may be down or
            restarting) with a new message; writes one TSV line per attempt to
            --transcript: msgid, code, reply text, t_start, t_end. Stops when N
            messages got a 250 (or --max-attempts is reached).
  send-file stream one message (a file of any size) to a server without reading
            it into memory; prints the final reply.
  raw       send raw bytes (hex escapes allowed) and print the replies: for the
            hostile-input tests.
  wait      wait for a "220" greeting on host:port.
  ids       print the Message-ID of every message in a directory of .eml files or
            smtp-sink dump files (one per line).
"""
import argparse
import json
import os
import socket
import socketserver
import sys
import threading
import time

CRLF = b"\r\n"


def parse_hostport(s):
    host, _, port = s.rpartition(":")
    return (host.strip("[]") or "127.0.0.1", int(port))


# --------------------------------------------------------------------- receiver

class RecvState:
    def __init__(self, outdir, mode_file, discard, name):
        self.outdir = outdir
        self.mode_file = mode_file
        self.discard = discard
        self.name = name
        self.lock = threading.Lock()
        self.seq = 0
        self.log = open(os.path.join(outdir, "..", name + ".transactions"), "a", buffering=1)

    def mode(self):
        try:
            with open(self.mode_file) as f:
                return f.read().strip() or "accept"
        except OSError:
            return "accept"

    def next_seq(self):
        with self.lock:
            self.seq += 1
            return self.seq

    def note(self, line):
        with self.lock:
            self.log.write("%.6f %s\n" % (time.time(), line))


class RecvHandler(socketserver.StreamRequestHandler):
    rbufsize = 1 << 16

    def reply(self, line):
        self.wfile.write(line.encode() + CRLF)
        self.wfile.flush()

    def handle(self):
        st = self.server.st
        self.reply("220 %s ESMTP sgsmtp-recv" % st.name)
        sender = None
        rcpts = []
        while True:
            line = self.rfile.readline(1 << 20)
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("latin-1")
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                if verb == "EHLO":
                    self.wfile.write(b"250-" + st.name.encode() + CRLF +
                                     b"250-PIPELINING" + CRLF + b"250-8BITMIME" + CRLF +
                                     b"250-SIZE 0" + CRLF + b"250 SMTPUTF8" + CRLF)
                    self.wfile.flush()
                else:
                    self.reply("250 " + st.name)
            elif verb == "MAIL":
                sender = smtp_path(cmd[10:]) if cmd[:10].upper() == "MAIL FROM:" else cmd
                rcpts = []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                r = smtp_path(cmd[8:])
                mode = st.mode()
                if mode == "reject-rcpt":
                    st.note("reject-rcpt %s" % r)
                    self.reply("550 5.1.1 %s: Recipient address rejected: test" % r)
                else:
                    rcpts.append(r)
                    self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if sender is None or not rcpts:
                    self.reply("503 5.5.1 Error: need RCPT command")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                self.receive_data(st, sender, rcpts)
                sender, rcpts = None, []
            elif verb == "RSET":
                sender, rcpts = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")

    def receive_data(self, st, sender, rcpts):
        t0 = time.time()
        seq = st.next_seq()
        tmp = os.path.join(st.outdir, ".%d.tmp" % seq)
        out = None if st.discard else open(tmp, "wb")
        size = 0
        msgid = None
        in_headers = True
        while True:
            line = self.rfile.readline(1 << 22)
            if not line:
                if out:
                    out.close()
                    os.unlink(tmp)
                return
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]
            if in_headers:
                if line in (b"\r\n", b"\n"):
                    in_headers = False
                elif msgid is None and line[:11].lower() == b"message-id:":
                    msgid = line[11:].strip().decode("latin-1")
            size += len(line)
            if out:
                out.write(line)
        mode = st.mode()
        if mode in ("tempfail", "reject-data"):
            if out:
                out.close()
                os.unlink(tmp)
            st.note("%s %s %s" % (mode, msgid, sender))
            if mode == "tempfail":
                self.reply("451 4.3.0 Error: test says try again later")
            else:
                self.reply("554 5.7.1 Error: test says no")
            return
        meta = {"from": sender, "to": rcpts, "message_id": msgid, "size": size,
                "t_start": t0, "t_arrival": time.time(), "seq": seq}
        if out:
            out.flush()
            out.close()
            os.rename(tmp, os.path.join(st.outdir, "%06d.eml" % seq))
        jtmp = os.path.join(st.outdir, ".%d.jtmp" % seq)
        with open(jtmp, "w") as f:
            json.dump(meta, f)
        os.rename(jtmp, os.path.join(st.outdir, "%06d.json" % seq))
        st.note("accept %s %s" % (msgid, sender))
        self.reply("250 2.0.0 Ok: queued as R%06d" % seq)


class ThreadedServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def cmd_recv(a):
    os.makedirs(a.dir, exist_ok=True)
    st = RecvState(a.dir, a.mode_file, a.discard, a.name)
    srv = ThreadedServer(parse_hostport(a.listen), RecvHandler)
    srv.st = st
    print("listening on %s" % a.listen, flush=True)
    srv.serve_forever()


# ----------------------------------------------------------------------- sender

def smtp_path(arg):
    """The address of a MAIL FROM:/RCPT TO: argument, without brackets and
    parameters ("<a@b> SIZE=1" -> "a@b", "<>" -> "")."""
    arg = arg.strip()
    if arg.startswith("<") and ">" in arg:
        return arg[1:arg.index(">")]
    return arg.split(" ")[0]


def read_reply(f):
    """Read one (possibly multi-line) reply; returns (code, text) or raises."""
    lines = []
    while True:
        line = f.readline(1 << 16)
        if not line:
            raise ConnectionError("connection closed")
        line = line.decode("latin-1").rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            break
    code = int(lines[-1][:3]) if lines[-1][:3].isdigit() else 0
    return code, " | ".join(lines)


class Conn:
    def __init__(self, hp, timeout):
        self.sock = socket.create_connection(hp, timeout=timeout)
        self.f = self.sock.makefile("rb")

    def cmd(self, line):
        if line is not None:
            self.sock.sendall(line.encode("latin-1") + CRLF)
        return read_reply(self.f)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def make_body(msgid, size, sender, rcpt, extra_headers=()):
    hdr = ["From: <%s>" % sender, "To: <%s>" % rcpt, "Subject: e2e %s" % msgid,
           "Date: %s" % time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
           "Message-ID: %s" % msgid, "X-Sent-At: %.6f" % time.time()]
    hdr.extend(extra_headers)
    text = "\r\n".join(hdr) + "\r\n\r\n"
    line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-.,:;+*/\r\n"
    n = max(1, (size - len(text)) // len(line))
    body = text + line * n
    return body.encode("latin-1")


def dot_stuff(data):
    data = data.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    return data


class SendStats:
    def __init__(self, total, max_attempts, transcript):
        self.lock = threading.Lock()
        self.total = total
        self.max_attempts = max_attempts
        self.accepted = 0
        self.attempts = 0
        self.inflight = 0
        self.out = open(transcript, "a", buffering=1) if transcript else None
        self.errors = {}

    def claim(self):
        with self.lock:
            if self.accepted + self.inflight >= self.total or self.attempts >= self.max_attempts:
                return None
            self.attempts += 1
            self.inflight += 1
            return self.attempts

    def done(self, ok, msgid, code, text, t0, t1):
        with self.lock:
            self.inflight -= 1
            if ok:
                self.accepted += 1
            else:
                k = "%03d" % code
                self.errors[k] = self.errors.get(k, 0) + 1
            if self.out:
                self.out.write("%s\t%03d\t%s\t%.6f\t%.6f\n" % (
                    msgid, code, text.replace("\t", " "), t0, t1))


def sender_thread(a, tid, stats, hp):
    conn = None
    tag = "%d.%d.%d" % (os.getpid(), tid, int(time.time() * 1000))
    while True:
        n = stats.claim()
        if n is None:
            break
        msgid = "<%s.%d@%s>" % (tag, n, a.id_domain)
        t0 = time.time()
        code, text = 0, ""
        try:
            if conn is None:
                conn = Conn(hp, a.timeout)
                code, text = conn.cmd(None)
                if code != 220:
                    raise ConnectionError("greeting " + text)
                code, text = conn.cmd("EHLO sender.e2e.test")
                if code != 250:
                    raise ConnectionError("EHLO " + text)
            t0 = time.time()
            code, text = conn.cmd("MAIL FROM:<%s>" % a.sender)
            if code == 250:
                rcpt = a.rcpt.replace("%n", str(n))
                code, text = conn.cmd("RCPT TO:<%s>" % rcpt)
                if code == 250:
                    code, text = conn.cmd("DATA")
                    if code == 354:
                        body = make_body(msgid, a.size, a.sender, rcpt)
                        conn.sock.sendall(dot_stuff(body) + b".\r\n")
                        code, text = conn.cmd(None)
            if code != 250:
                try:
                    conn.cmd("RSET")
                except (OSError, ConnectionError):
                    conn.close()
                    conn = None
        except (OSError, ConnectionError) as e:
            if conn is not None:
                conn.close()
            conn = None
            code, text = 0, "connection error after '%s': %s" % (text[:60], e)
        stats.done(code == 250, msgid, code, text, t0, time.time())
        if code != 250:
            time.sleep(a.retry_delay)
        if a.per_conn and conn is not None and n % a.per_conn == 0:
            try:
                conn.cmd("QUIT")
            except (OSError, ConnectionError):
                pass
            conn.close()
            conn = None
    if conn is not None:
        try:
            conn.cmd("QUIT")
        except (OSError, ConnectionError):
            pass
        conn.close()


def cmd_send(a):
    hp = parse_hostport(a.server)
    stats = SendStats(a.count, a.max_attempts or a.count * 20, a.transcript)
    threads = [threading.Thread(target=sender_thread, args=(a, i, stats, hp))
               for i in range(a.concurrency)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.time() - t0
    print("sent: accepted=%d attempts=%d errors=%s seconds=%.3f" % (
        stats.accepted, stats.attempts, json.dumps(stats.errors, sort_keys=True), dt),
        flush=True)
    return 0 if stats.accepted == a.count else 1


def cmd_send_file(a):
    hp = parse_hostport(a.server)
    conn = Conn(hp, a.timeout)
    steps = [(None, 220), ("EHLO sender.e2e.test", 250), ("MAIL FROM:<%s>" % a.sender, 250),
             ("RCPT TO:<%s>" % a.rcpt, 250), ("DATA", 354)]
    for line, want in steps:
        code, text = conn.cmd(line)
        if code != want:
            print("%03d %s" % (code, text))
            return 1
    last = b"\n"
    with open(a.file, "rb") as f:
        pending = b""
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            data = pending + chunk
            # keep a partial last line for the next round so dot-stuffing sees line starts
            cut = data.rfind(b"\n") + 1
            block, pending = data[:cut], data[cut:]
            if block:
                stuffed = block.replace(b"\n.", b"\n..")
                if last == b"\n" and stuffed.startswith(b"."):
                    stuffed = b"." + stuffed
                conn.sock.sendall(stuffed)
                last = block[-1:]
        if pending:
            if last == b"\n" and pending.startswith(b"."):
                pending = b"." + pending
            conn.sock.sendall(pending.replace(b"\n.", b"\n..") + CRLF)
    conn.sock.sendall(b".\r\n")
    code, text = conn.cmd(None)
    print("%03d %s" % (code, text), flush=True)
    try:
        conn.cmd("QUIT")
    except (OSError, ConnectionError):
        pass
    return 0 if code == 250 else 1


# -------------------------------------------------------------------------- raw

def unescape(s):
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


def cmd_raw(a):
    """Each step: 'S:<bytes with \\r\\n escapes>' sends; 'R' reads one reply and
    prints it; 'R*' reads replies until the server stops talking for 1 s;
    'B:<n>:<byte>' sends n copies of a byte (large lines); 'P:<n>:<cmd>' pipelines
    n copies of cmd + CRLF in batches and prints a summary of the reply codes."""
    hp = parse_hostport(a.server)
    sock = socket.create_connection(hp, timeout=a.timeout)
    f = sock.makefile("rb")
    rc = 0
    try:
        for step in a.steps:
            if step.startswith("S:"):
                sock.sendall(unescape(step[2:]))
            elif step.startswith("B:"):
                _, n, b = step.split(":", 2)
                blk = unescape(b) * (1 << 16)
                left = int(n)
                while left > 0:
                    part = blk[:min(left, len(blk))]
                    sock.sendall(part)
                    left -= len(part)
            elif step == "R":
                code, text = read_reply(f)
                print("%03d %s" % (code, text[:300]), flush=True)
            elif step == "R*":
                sock.settimeout(1.0)
                try:
                    while True:
                        code, text = read_reply(f)
                        print("%03d %s" % (code, text[:300]), flush=True)
                except (socket.timeout, ConnectionError, OSError):
                    pass
                sock.settimeout(a.timeout)
            elif step.startswith("P:"):
                _, n, c = step.split(":", 2)
                n = int(n)
                counts = {}
                batch = 500
                i = 0
                closed = ""
                try:
                    while i < n:
                        k = min(batch, n - i)
                        payload = b"".join(unescape(c.replace("%n", str(i + j))) + CRLF
                                           for j in range(k))
                        sock.sendall(payload)
                        for _ in range(k):
                            code, _t = read_reply(f)
                            counts[code] = counts.get(code, 0) + 1
                        i += k
                except (ConnectionError, OSError, ValueError) as e:
                    closed = " CLOSED %s" % e
                print("PIPELINE " + " ".join("%03d=%d" % (c2, counts[c2])
                                             for c2 in sorted(counts)) + closed, flush=True)
                if closed:
                    break
            else:
                raise SystemExit("bad step %r" % step)
    except (ConnectionError, OSError) as e:
        print("CLOSED %s" % e, flush=True)
        rc = 0
    sock.close()
    return rc


def cmd_wait(a):
    hp = parse_hostport(a.server)
    end = time.time() + a.timeout
    while time.time() < end:
        try:
            c = Conn(hp, 2)
            code, _ = c.cmd(None)
            try:
                c.cmd("QUIT")
            except (OSError, ConnectionError):
                pass
            c.close()
            if code == 220:
                return 0
        except (OSError, ConnectionError):
            pass
        time.sleep(0.1)
    return 1


def cmd_ids(a):
    for root, _dirs, files in os.walk(a.dir):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            if fn.endswith(".json") or fn.startswith("."):
                continue
            mid = None
            with open(p, "rb") as f:
                for raw in f:
                    line = raw.rstrip(b"\r\n")
                    if line == b"":
                        break
                    if line[:11].lower() == b"message-id:":
                        mid = line[11:].strip().decode("latin-1")
                        break
            print(mid if mid else "NO-MESSAGE-ID:" + p)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--listen", required=True)
    r.add_argument("--dir", required=True)
    r.add_argument("--mode-file", required=True)
    r.add_argument("--name", default="recv")
    r.add_argument("--discard", action="store_true")
    s = sub.add_parser("send")
    s.add_argument("--server", required=True)
    s.add_argument("--count", type=int, default=1)
    s.add_argument("--concurrency", type=int, default=1)
    s.add_argument("--size", type=int, default=2048)
    s.add_argument("--sender", default="sender@ext.e2e.test")
    s.add_argument("--rcpt", default="rcpt%n@dest.e2e.test")
    s.add_argument("--transcript")
    s.add_argument("--id-domain", default="e2e.sealgate.test")
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--retry-delay", type=float, default=0.05)
    s.add_argument("--max-attempts", type=int, default=0)
    s.add_argument("--per-conn", type=int, default=0, help="messages per connection (0 = unlimited)")
    f = sub.add_parser("send-file")
    f.add_argument("--server", required=True)
    f.add_argument("--file", required=True)
    f.add_argument("--sender", default="sender@ext.e2e.test")
    f.add_argument("--rcpt", default="rcpt@dest.e2e.test")
    f.add_argument("--timeout", type=float, default=600)
    w = sub.add_parser("raw")
    w.add_argument("--server", required=True)
    w.add_argument("--timeout", type=float, default=30)
    w.add_argument("steps", nargs="+")
    t = sub.add_parser("wait")
    t.add_argument("--server", required=True)
    t.add_argument("--timeout", type=float, default=20)
    i = sub.add_parser("ids")
    i.add_argument("dir")
    a = p.parse_args()
    return {"recv": cmd_recv, "send": cmd_send, "send-file": cmd_send_file, "raw": cmd_raw,
            "wait": cmd_wait, "ids": cmd_ids}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main() or 0)
