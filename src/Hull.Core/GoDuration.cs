using System.Globalization;
using System.Text;

namespace Hull.Core;

/// <summary>
/// Durations in Go's <c>time.ParseDuration</c> syntax, the one containerd's config uses
/// (<c>"5m"</c>, <c>"30s"</c>, <c>"4h0m0s"</c>, <c>"1.5h"</c>, <c>"100ms"</c>), and Go's
/// <c>Duration.String</c> form for writing them back. <see cref="TimeSpan"/> keeps 100 ns ticks,
/// so finer parts are truncated.
/// </summary>
public static class GoDuration
{
    private const long NanosPerTick = 100;

    private static readonly (string Unit, long Nanos)[] Units =
    [
        ("ns", 1), ("us", 1_000), ("\u00B5s", 1_000), ("\u03BCs", 1_000), ("ms", 1_000_000),
        ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000),
    ];

    public static bool TryParse(string text, out TimeSpan value, out string? error)
    {
        value = TimeSpan.Zero;
        error = null;
        string s = text;
        if (s.Length == 0)
        {
            error = "empty duration";
            return false;
        }

        bool negative = false;
        if (s[0] is '-' or '+')
        {
            negative = s[0] == '-';
            s = s[1..];
        }

        if (s == "0")
        {
            return true;
        }

        if (s.Length == 0)
        {
            error = "missing number";
            return false;
        }

        decimal totalNanos = 0;
        int i = 0;
        while (i < s.Length)
        {
            int start = i;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                i++;
            }

            int intEnd = i;
            int fracStart = i, fracEnd = i;
            if (i < s.Length && s[i] == '.')
            {
                i++;
                fracStart = i;
                while (i < s.Length && char.IsAsciiDigit(s[i]))
                {
                    i++;
                }

                fracEnd = i;
            }

            if (intEnd == start && fracEnd == fracStart)
            {
                error = "expected a number";
                return false;
            }

            int unitStart = i;
            while (i < s.Length && s[i] != '.' && !char.IsAsciiDigit(s[i]))
            {
                i++;
            }

            string unit = s[unitStart..i];
            if (unit.Length == 0)
            {
                error = "missing unit (one of ns, us, ms, s, m, h)";
                return false;
            }

            long unitNanos = 0;
            foreach (var (name, nanos) in Units)
            {
                if (name == unit)
                {
                    unitNanos = nanos;
                }
            }

            if (unitNanos == 0)
            {
                error = $"unknown unit \"{unit}\" (one of ns, us, ms, s, m, h)";
                return false;
            }

            try
            {
                decimal number = intEnd > start ? decimal.Parse(s[start..intEnd], NumberStyles.None, CultureInfo.InvariantCulture) : 0m;
                if (fracEnd > fracStart)
                {
                    string digits = s[fracStart..fracEnd];
                    if (digits.Length > 18)
                    {
                        digits = digits[..18];
                    }

                    number += decimal.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture) / Pow10(digits.Length);
                }

                totalNanos += number * unitNanos;
            }
            catch (OverflowException)
            {
                error = "duration out of range";
                return false;
            }

            if (totalNanos > long.MaxValue)
            {
                error = "duration out of range";
                return false;
            }
        }

        long ticks = (long)decimal.Truncate(totalNanos / NanosPerTick);
        value = TimeSpan.FromTicks(negative ? -ticks : ticks);
        return true;
    }

    /// <exception cref="FormatException">The text is not a Go duration.</exception>
    public static TimeSpan Parse(string text) =>
        TryParse(text, out var value, out var error) ? value : throw new FormatException($"invalid duration \"{text}\": {error}");

    /// <summary>Go's <c>Duration.String</c>: <c>"4h0m0s"</c>, <c>"5m0s"</c>, <c>"1.5s"</c>, <c>"100ms"</c>, <c>"0s"</c>.</summary>
    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.Zero)
        {
            return "0s";
        }

        var sb = new StringBuilder();
        long ticks = value.Ticks;
        if (ticks < 0)
        {
            sb.Append('-');
        }

        // Ticks are 100 ns, so |ticks| * 100 fits in a UInt128 comfortably.
        UInt128 nanos = (UInt128)Int128.Abs(ticks) * NanosPerTick;
        if (nanos < 1_000_000_000)
        {
            if (nanos < 1_000)
            {
                return sb.Append(nanos.ToString(CultureInfo.InvariantCulture)).Append("ns").ToString();
            }

            return nanos < 1_000_000
                ? AppendFraction(sb, nanos, 3).Append("\u00B5s").ToString()
                : AppendFraction(sb, nanos, 6).Append("ms").ToString();
        }

        UInt128 seconds = nanos / 1_000_000_000;
        UInt128 fraction = nanos % 1_000_000_000;
        UInt128 minutes = seconds / 60;
        UInt128 hours = minutes / 60;
        if (hours > 0)
        {
            sb.Append(hours.ToString(CultureInfo.InvariantCulture)).Append('h');
        }

        if (minutes > 0)
        {
            sb.Append((minutes % 60).ToString(CultureInfo.InvariantCulture)).Append('m');
        }

        sb.Append((seconds % 60).ToString(CultureInfo.InvariantCulture));
        if (fraction > 0)
        {
            sb.Append('.').Append(fraction.ToString("D9", CultureInfo.InvariantCulture).TrimEnd('0'));
        }

        return sb.Append('s').ToString();
    }

    private static StringBuilder AppendFraction(StringBuilder sb, UInt128 nanos, int digits)
    {
        UInt128 scale = 1;
        for (int i = 0; i < digits; i++)
        {
            scale *= 10;
        }

        sb.Append((nanos / scale).ToString(CultureInfo.InvariantCulture));
        UInt128 rest = nanos % scale;
        if (rest > 0)
        {
            sb.Append('.').Append(rest.ToString("D" + digits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture).TrimEnd('0'));
        }

        return sb;
    }

    private static decimal Pow10(int n)
    {
        decimal r = 1;
        for (int i = 0; i < n; i++)
        {
            r *= 10;
        }

        return r;
    }
}
