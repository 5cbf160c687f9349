using System.Globalization;
using System.Text;

namespace Hull.Config.Toml;

/// <summary>The four TOML date/time flavours.</summary>
public enum TomlDateTimeKind
{
    /// <summary><c>1979-05-27T07:32:00-07:00</c></summary>
    OffsetDateTime,

    /// <summary><c>1979-05-27T07:32:00</c></summary>
    LocalDateTime,

    /// <summary><c>1979-05-27</c></summary>
    LocalDate,

    /// <summary><c>07:32:00</c></summary>
    LocalTime,
}

/// <summary>
/// A TOML date/time value. Unlike <see cref="DateTimeOffset"/> it keeps which of the four kinds was
/// written, nanosecond precision and the number of fractional digits, so it can be re-emitted as written.
/// Equality compares the value (kind, fields, offset), not how many fractional digits were written.
/// </summary>
public readonly struct TomlDateTime : IEquatable<TomlDateTime>
{
    internal TomlDateTime(
        TomlDateTimeKind kind, int year, int month, int day, int hour, int minute, int second,
        int nanosecond, int fractionDigits, int offsetMinutes)
    {
        Kind = kind;
        Year = year;
        Month = month;
        Day = day;
        Hour = hour;
        Minute = minute;
        Second = second;
        Nanosecond = nanosecond;
        FractionDigits = fractionDigits;
        OffsetMinutes = offsetMinutes;
    }

    public TomlDateTimeKind Kind { get; }

    /// <summary>0 for a local time.</summary>
    public int Year { get; }

    public int Month { get; }

    public int Day { get; }

    /// <summary>0 for a local date.</summary>
    public int Hour { get; }

    public int Minute { get; }

    /// <summary>0-60 (60 only for a leap second).</summary>
    public int Second { get; }

    /// <summary>Fraction of the second in nanoseconds (digits beyond nine are truncated, as the spec requires).</summary>
    public int Nanosecond { get; }

    /// <summary>Number of fractional-second digits to emit (0-9).</summary>
    public int FractionDigits { get; }

    /// <summary>UTC offset in minutes; meaningful only for <see cref="TomlDateTimeKind.OffsetDateTime"/>.</summary>
    public int OffsetMinutes { get; }

    public bool HasDate => Kind != TomlDateTimeKind.LocalTime;

    public bool HasTime => Kind != TomlDateTimeKind.LocalDate;

    public static TomlDateTime FromDateTimeOffset(DateTimeOffset value)
    {
        (int ns, int digits) = FractionFromTicks(value.Ticks);
        return new TomlDateTime(
            TomlDateTimeKind.OffsetDateTime, value.Year, value.Month, value.Day, value.Hour, value.Minute, value.Second,
            ns, digits, (int)value.Offset.TotalMinutes);
    }

    /// <summary>Uses the clock time of <paramref name="value"/>; its <see cref="DateTime.Kind"/> is ignored.</summary>
    public static TomlDateTime FromLocalDateTime(DateTime value)
    {
        (int ns, int digits) = FractionFromTicks(value.Ticks);
        return new TomlDateTime(
            TomlDateTimeKind.LocalDateTime, value.Year, value.Month, value.Day, value.Hour, value.Minute, value.Second, ns, digits, 0);
    }

    public static TomlDateTime FromLocalDate(DateOnly value) =>
        new(TomlDateTimeKind.LocalDate, value.Year, value.Month, value.Day, 0, 0, 0, 0, 0, 0);

    public static TomlDateTime FromLocalTime(TimeOnly value)
    {
        (int ns, int digits) = FractionFromTicks(value.Ticks);
        return new TomlDateTime(TomlDateTimeKind.LocalTime, 0, 0, 0, value.Hour, value.Minute, value.Second, ns, digits, 0);
    }

    /// <summary>Parses RFC 3339 / TOML date-time text such as <c>1979-05-27 07:32:00.5Z</c>.</summary>
    /// <exception cref="FormatException">The text is not a valid TOML date/time.</exception>
    public static TomlDateTime Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TomlDateTimeParser.TryParse(text, out TomlDateTime value, out string? error)
            ? value
            : throw new FormatException($"'{text}' is not a valid TOML date/time: {error}");
    }

    public static bool TryParse(string? text, out TomlDateTime value)
    {
        if (text is null)
        {
            value = default;
            return false;
        }

        return TomlDateTimeParser.TryParse(text, out value, out _);
    }

    /// <summary>Converts an offset date-time. .NET has no leap seconds, so second 60 becomes 59.</summary>
    public DateTimeOffset ToDateTimeOffset()
    {
        RequireKind(TomlDateTimeKind.OffsetDateTime);
        return new DateTimeOffset(ClockDateTime(), TimeSpan.FromMinutes(OffsetMinutes));
    }

    /// <summary>Converts a local date-time (or a local date, at midnight) to an unspecified-kind <see cref="DateTime"/>.</summary>
    public DateTime ToDateTime()
    {
        if (Kind is not (TomlDateTimeKind.LocalDateTime or TomlDateTimeKind.LocalDate))
        {
            throw new InvalidOperationException($"A TOML {KindName} cannot be converted to a DateTime without losing information.");
        }

        return ClockDateTime();
    }

    public DateOnly ToDateOnly() => HasDate
        ? new DateOnly(Year, Month, Day)
        : throw new InvalidOperationException("A TOML local time has no date.");

    public TimeOnly ToTimeOnly() => HasTime
        ? new TimeOnly(Hour, Minute, Math.Min(Second, 59)).Add(TimeSpan.FromTicks(Nanosecond / 100))
        : throw new InvalidOperationException("A TOML local date has no time.");

    /// <summary>The value in TOML syntax (with a <c>T</c> separator and <c>Z</c> for a zero offset).</summary>
    public override string ToString()
    {
        var sb = new StringBuilder(40);
        if (HasDate)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{Year:D4}-{Month:D2}-{Day:D2}");
        }

        if (HasTime)
        {
            if (HasDate)
            {
                sb.Append('T');
            }

            sb.Append(CultureInfo.InvariantCulture, $"{Hour:D2}:{Minute:D2}:{Second:D2}");
            if (FractionDigits > 0)
            {
                sb.Append('.').Append(Nanosecond.ToString("D9", CultureInfo.InvariantCulture), 0, FractionDigits);
            }
        }

        if (Kind == TomlDateTimeKind.OffsetDateTime)
        {
            if (OffsetMinutes == 0)
            {
                sb.Append('Z');
            }
            else
            {
                int abs = Math.Abs(OffsetMinutes);
                sb.Append(OffsetMinutes < 0 ? '-' : '+').Append(CultureInfo.InvariantCulture, $"{abs / 60:D2}:{abs % 60:D2}");
            }
        }

        return sb.ToString();
    }

    public bool Equals(TomlDateTime other) =>
        Kind == other.Kind && Year == other.Year && Month == other.Month && Day == other.Day &&
        Hour == other.Hour && Minute == other.Minute && Second == other.Second &&
        Nanosecond == other.Nanosecond && OffsetMinutes == other.OffsetMinutes;

    public override bool Equals(object? obj) => obj is TomlDateTime other && Equals(other);

    public override int GetHashCode() =>
        HashCode.Combine(Kind, Year, Month, Day, Hour, Minute, HashCode.Combine(Second, Nanosecond, OffsetMinutes));

    public static bool operator ==(TomlDateTime left, TomlDateTime right) => left.Equals(right);

    public static bool operator !=(TomlDateTime left, TomlDateTime right) => !left.Equals(right);

    private string KindName => TomlValues.TypeName(this);

    private void RequireKind(TomlDateTimeKind kind)
    {
        if (Kind != kind)
        {
            throw new InvalidOperationException($"This TOML value is a {KindName}.");
        }
    }

    private DateTime ClockDateTime() =>
        new DateTime(Year, Month, Day, Hour, Minute, Math.Min(Second, 59), DateTimeKind.Unspecified)
            .AddTicks(Nanosecond / 100);

    // .NET stores 100 ns ticks; emit only the digits that carry information.
    private static (int Nanosecond, int Digits) FractionFromTicks(long ticks)
    {
        int fraction = (int)(ticks % TimeSpan.TicksPerSecond);
        if (fraction == 0)
        {
            return (0, 0);
        }

        int digits = 7;
        for (int f = fraction; f % 10 == 0; f /= 10)
        {
            digits--;
        }

        return (fraction * 100, digits);
    }
}
