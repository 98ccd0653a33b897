"""Drives a command through a pseudo-terminal for hulld's interactive tests.

usage: pty_drive.py SCRIPT-JSON -- COMMAND...
SCRIPT-JSON is a list of steps: ["send", text] writes to the terminal, ["expect", text]
waits (20 s at most) for text in the output since the last expect, ["resize", rows, cols]
sets the terminal's size (the process gets SIGWINCH), ["sleep", seconds], ["until", text,
want] sends text every 2 s until want is in the output (20 s at most), ["resize_until",
rows, cols, text] resizes and sends text until "ROWS COLS" comes back, resizing to one row
and column more each 3 s (a SIGWINCH the client misses is not the server's fault).
Exits with the command's exit code; on a failed expect with 99 and the output so far.
"""
import fcntl, json, os, pty, select, struct, sys, termios, time

sep = sys.argv.index("--")
steps = json.loads(sys.argv[1])
cmd = sys.argv[sep + 1:]


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


pid, fd = pty.fork()
if pid == 0:
    set_size(0, 24, 80)
    os.execvp(cmd[0], cmd)

out = b""
seen = 0


def pump(timeout):
    global out
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return True
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    if not data:
        return False
    out += data
    return True


for step in steps:
    kind = step[0]
    if kind == "send":
        os.write(fd, step[1].encode())
    elif kind == "resize":
        set_size(fd, step[1], step[2])
    elif kind == "sleep":
        end = time.time() + step[1]
        while time.time() < end and pump(0.05):
            pass
    elif kind == "until":
        want = step[2].encode()
        end = time.time() + 20
        found = False
        while time.time() < end and not found:
            os.write(fd, step[1].encode())
            tick = time.time() + 2
            while time.time() < tick:
                if want in out[seen:]:
                    found = True
                    break
                if not pump(0.1):
                    break
        if not found:
            sys.stdout.write("UNTIL FAILED: %r\nOUTPUT: %r\n" % (step[2], out))
            os.kill(pid, 9)
            sys.exit(99)
        seen = out.index(want, seen) + len(want)
    elif kind == "resize_until":
        found = False
        for i in range(6):
            rows, cols = step[1] + i, step[2] + i
            set_size(fd, rows, cols)
            want = ("%d %d" % (rows, cols)).encode()
            os.write(fd, step[3].encode())
            tick = time.time() + 3
            while time.time() < tick:
                if want in out[seen:]:
                    found = True
                    break
                if not pump(0.1):
                    break
            if found:
                if i > 0:
                    sys.stderr.write("resize_until: took %d resizes\n" % (i + 1))
                break
        if not found:
            sys.stdout.write("RESIZE FAILED: %r\nOUTPUT: %r\n" % (step, out))
            os.kill(pid, 9)
            sys.exit(99)
        seen = out.index(want, seen) + len(want)
    elif kind == "expect":
        want = step[1].encode()
        end = time.time() + 20
        while want not in out[seen:]:
            if time.time() > end or not pump(0.2):
                if want in out[seen:]:
                    break
                sys.stdout.write("EXPECT FAILED: %r\nOUTPUT: %r\n" % (step[1], out))
                os.kill(pid, 9)
                sys.exit(99)
        seen = out.index(want, seen) + len(want)

end = time.time() + 30
while time.time() < end and pump(0.2):
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write("OUTPUT: %r\n" % out)
sys.exit(os.waitstatus_to_exitcode(status))
