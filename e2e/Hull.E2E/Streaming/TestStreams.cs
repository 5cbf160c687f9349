using System.Text;
// Stdin and stdout stand-ins for streaming sessions in the e2e tests.

namespace Hull.E2E.Streaming;

/// <summary>A stdin that yields some bytes and then never ends (until cancelled).</summary>
internal sealed class ThenBlockingStream(byte[] data) : Stream
{
    private int _pos;
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => 0; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_pos < data.Length)
        {
            int n = Math.Min(buffer.Length, data.Length - _pos);
            data.AsMemory(_pos, n).CopyTo(buffer);
            _pos += n;
            return n;
        }
        await Task.Delay(Timeout.Infinite, cancellationToken);
        return 0;
    }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>Collects what is written and tells when a text has appeared (at or after a position).</summary>
internal sealed class NotifyingStream : Stream
{
    private readonly StringBuilder _text = new();
    private readonly List<(string Text, int From, TaskCompletionSource Seen)> _waiters = [];

    public string Text { get { lock (_text) return _text.ToString(); } }

    public Task Seen(string text, int from = 0)
    {
        lock (_text)
        {
            if (_text.ToString().IndexOf(text, Math.Min(from, _text.Length), StringComparison.Ordinal) >= 0) return Task.CompletedTask;
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((text, from, tcs));
            return tcs.Task;
        }
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        lock (_text)
        {
            _text.Append(Encoding.UTF8.GetString(buffer, offset, count));
            var now = _text.ToString();
            foreach (var w in _waiters.Where(w => now.IndexOf(w.Text, Math.Min(w.From, now.Length), StringComparison.Ordinal) >= 0).ToList())
            {
                w.Seen.TrySetResult();
                _waiters.Remove(w);
            }
        }
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => 0; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
