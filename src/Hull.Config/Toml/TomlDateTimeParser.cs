using System.Diagnostics.CodeAnalysis;

namespace Hull.Config.Toml;

/// <summary>
/// Strict parser for the four TOML date/time forms (RFC 3339 with TOML's relaxations: a space may
/// replace <c>T</c>, lowercase <c>t</c>/<c>z</c> are accepted, and local forms omit the offset).
/// </summary>
internal static class TomlDateTimeParser
{
    /// <summary>Longest fraction kept; further digits are truncated (the spec forbids rounding).</summary>
    private const int MaxFractionDigits = 9;

    public static bool TryParse(string s, out TomlDateTime value, [NotNullWhen(false)] out string? error)
    {
        value = default;
        int i = 0;

        if (s.Length >= 3 && IsDigit(s[0]) && IsDigit(s[1]) && s[2] == ':')
        {
            if (!TryParseTime(s, ref i, out Time time, out error))
            {
                return false;
            }

            if (i != s.Length)
            {
                error = $"unexpected {Describe(s, i)} after local time";
                return false;
            }

            value = new TomlDateTime(TomlDateTimeKind.LocalTime, 0, 0, 0, time.Hour, time.Minute, time.Second, time.Nanos, time.Digits, 0);
            return true;
        }

        if (!TryParseDate(s, ref i, out int year, out int month, out int day, out error))
        {
            return false;
        }

        if (i == s.Length)
        {
            value = new TomlDateTime(TomlDateTimeKind.LocalDate, year, month, day, 0, 0, 0, 0, 0, 0);
            return true;
        }

        if (s[i] is not ('T' or 't' or ' '))
        {
            error = $"expected 'T' or a space between date and time, found {Describe(s, i)}";
            return false;
        }

        i++;
        if (!TryParseTime(s, ref i, out Time t, out error))
        {
            return false;
        }

        if (i == s.Length)
        {
            value = new TomlDateTime(TomlDateTimeKind.LocalDateTime, year, month, day, t.Hour, t.Minute, t.Second, t.Nanos, t.Digits, 0);
            return true;
        }

        if (!TryParseOffset(s, ref i, out int offset, out error))
        {
            return false;
        }

        if (i != s.Length)
        {
            error = $"unexpected {Describe(s, i)} after date-time";
            return false;
        }

        value = new TomlDateTime(TomlDateTimeKind.OffsetDateTime, year, month, day, t.Hour, t.Minute, t.Second, t.Nanos, t.Digits, offset);
        return true;
    }

    public static bool IsLeapYear(int year) => year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);

    private static bool TryParseDate(string s, ref int i, out int year, out int month, out int day, [NotNullWhen(false)] out string? error)
    {
        month = day = 0;
        if (!TryDigits(s, ref i, 4, out year) || !TryChar(s, ref i, '-') ||
            !TryDigits(s, ref i, 2, out month) || !TryChar(s, ref i, '-') ||
            !TryDigits(s, ref i, 2, out day))
        {
            error = "malformed date, expected YYYY-MM-DD";
            return false;
        }

        if (month is < 1 or > 12)
        {
            error = $"month {month:D2} is out of range 01-12";
            return false;
        }

        int maxDay = month switch
        {
            2 => IsLeapYear(year) ? 29 : 28,
            4 or 6 or 9 or 11 => 30,
            _ => 31,
        };
        if (day < 1 || day > maxDay)
        {
            error = $"day {day:D2} is out of range 01-{maxDay} for {year:D4}-{month:D2}";
            return false;
        }

        error = null;
        return true;
    }

    private static bool TryParseTime(string s, ref int i, out Time time, [NotNullWhen(false)] out string? error)
    {
        time = default;
        if (!TryDigits(s, ref i, 2, out int hour) || !TryChar(s, ref i, ':') || !TryDigits(s, ref i, 2, out int minute))
        {
            error = "malformed time, expected HH:MM:SS";
            return false;
        }

        // TOML 1.0 requires seconds (omitting them is a TOML 1.1 feature).
        if (!TryChar(s, ref i, ':') || !TryDigits(s, ref i, 2, out int second))
        {
            error = "malformed time, expected HH:MM:SS (seconds are required)";
            return false;
        }

        if (hour > 23)
        {
            error = $"hour {hour:D2} is out of range 00-23";
            return false;
        }

        if (minute > 59)
        {
            error = $"minute {minute:D2} is out of range 00-59";
            return false;
        }

        // 60 is RFC 3339's leap second.
        if (second > 60)
        {
            error = $"second {second:D2} is out of range 00-60";
            return false;
        }

        int nanos = 0, digits = 0;
        if (i < s.Length && s[i] == '.')
        {
            i++;
            int start = i;
            while (i < s.Length && IsDigit(s[i]))
            {
                if (i - start < MaxFractionDigits)
                {
                    nanos = (nanos * 10) + (s[i] - '0');
                    digits++;
                }

                i++;
            }

            if (i == start)
            {
                error = "expected digits after '.' in time";
                return false;
            }

            for (int d = digits; d < MaxFractionDigits; d++)
            {
                nanos *= 10;
            }
        }

        time = new Time(hour, minute, second, nanos, digits);
        error = null;
        return true;
    }

    private static bool TryParseOffset(string s, ref int i, out int minutes, [NotNullWhen(false)] out string? error)
    {
        minutes = 0;
        if (s[i] is 'Z' or 'z')
        {
            i++;
            error = null;
            return true;
        }

        if (s[i] is not ('+' or '-'))
        {
            error = $"unexpected {Describe(s, i)} after time, expected 'Z' or a +HH:MM offset";
            return false;
        }

        int sign = s[i] == '-' ? -1 : 1;
        i++;
        if (!TryDigits(s, ref i, 2, out int hours) || !TryChar(s, ref i, ':') || !TryDigits(s, ref i, 2, out int mins))
        {
            error = "malformed UTC offset, expected +HH:MM or -HH:MM";
            return false;
        }

        if (hours > 23 || mins > 59)
        {
            error = $"UTC offset {hours:D2}:{mins:D2} is out of range";
            return false;
        }

        minutes = sign * ((hours * 60) + mins);
        error = null;
        return true;
    }

    private static bool TryDigits(string s, ref int i, int count, out int value)
    {
        value = 0;
        if (i + count > s.Length)
        {
            return false;
        }

        for (int k = 0; k < count; k++)
        {
            if (!IsDigit(s[i + k]))
            {
                return false;
            }

            value = (value * 10) + (s[i + k] - '0');
        }

        i += count;
        return true;
    }

    private static bool TryChar(string s, ref int i, char c)
    {
        if (i < s.Length && s[i] == c)
        {
            i++;
            return true;
        }

        return false;
    }

    private static bool IsDigit(char c) => c is >= '0' and <= '9';

    private static string Describe(string s, int i) => i < s.Length ? $"'{s[i]}'" : "end of value";

    private readonly record struct Time(int Hour, int Minute, int Second, int Nanos, int Digits);
}
